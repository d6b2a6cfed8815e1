"""Trunk admission: node credentials and the policy that decides whom a node trunks with.

`credential` is the node credential format (signed by an authority, binding a node key);
`policy.Admission` decides on a peer's INTRO before the node acts on anything it sends.
"""

from .credential import NodeCredential, decode, issue, read_file, to_text, verify
from .policy import Admission, Verdict

__all__ = [
    "Admission",
    "NodeCredential",
    "Verdict",
    "decode",
    "issue",
    "read_file",
    "to_text",
    "verify",
]
