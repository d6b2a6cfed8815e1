"""Private (MLS) VLANs: one package behind a small face.

`Mvlan` is what a node composes: it carries a private VLAN's CONTROL traffic on the
VLAN's MVLAN, runs the MLS group (`vlan.PrivateVlan`), and hands frame keys to the
port. `authority` defines the credentials a VLAN's authority signs; `authority_cli`
is `peertap authority`. Everything else in here is internal to private VLANs.
"""

from .lifecycle import PrivateSettings
from .macprobe import MacClaim, set_link_mac
from .mvlan import Mvlan

__all__ = ["MacClaim", "Mvlan", "PrivateSettings", "set_link_mac"]
