"""RFC 9420 wire structs as frozen dataclasses.

Every struct has ``write(w)`` / ``encode()`` and ``read(r)`` / ``decode(data)``
(``decode`` rejects trailing bytes). Conventions:

* Vectors are tuples (lists passed to a constructor are turned into tuples).
* Enumerations are stored as plain ints; the ``IntEnum`` classes name the values.
  An unknown value that decides how the rest is parsed (a ``select``) is a
  DecodeError; other unknown values are kept for the validity checks.
* Variant structs hold their variant by type: ``Proposal.body`` is an ``Add``,
  ``Update``, ...; ``FramedContent.content`` is ``bytes`` (application data), a
  ``Proposal`` or a ``Commit``; ``MLSMessage.body`` is one of the five messages.
  The discriminating enum is a property derived from that type.
* ``LeafNode``, ``KeyPackage``, ``ParentNode`` and ``GroupContext`` remember their
  encoding (the bytes they were decoded from, or the first ``encode()``), since
  tree hashes and references encode them again and again.

The structs are defined by concern in ``struct_base`` (enums, base classes, small
structs, GroupContext), ``tree_structs`` (leaf/parent nodes, KeyPackage),
``group_structs`` (proposals, Commit, GroupInfo, Welcome) and ``message_structs``
(framing and MLSMessage); import them from here.

Struct encodings used only as signature/MAC inputs (FramedContentTBS,
AuthenticatedContentTBM, PrivateContentAAD, SenderDataAAD, PrivateMessageContent)
live in ``framing``.
"""

from __future__ import annotations

from .group_structs import (
    Add,
    Commit,
    EncryptedGroupSecrets,
    ExternalInit,
    GroupContextExtensions,
    GroupInfo,
    GroupSecrets,
    PathSecret,
    PreSharedKey,
    Proposal,
    ProposalBody,
    ProposalOrRef,
    ReInit,
    Remove,
    Update,
    Welcome,
)
from .message_structs import (
    AuthenticatedContent,
    Content,
    FramedContent,
    FramedContentAuthData,
    MessageBody,
    MLSMessage,
    PrivateMessage,
    PublicMessage,
    Sender,
    SenderData,
    content_type_of,
    read_content,
    write_content,
)
from .psk import PreSharedKeyID
from .struct_base import (
    ApplicationId,
    CachedStruct,
    Capabilities,
    ContentType,
    Credential,
    CredentialType,
    Extension,
    ExtensionType,
    ExternalPub,
    ExternalSender,
    ExternalSenders,
    GroupContext,
    HPKECiphertext,
    LeafNodeSource,
    Lifetime,
    NodeType,
    ProposalOrRefType,
    ProposalType,
    ProtocolVersion,
    RequiredCapabilities,
    SenderType,
    Struct,
    WireFormat,
)
from .tree_structs import (
    KeyPackage,
    LeafNode,
    Node,
    ParentNode,
    RatchetTree,
    UpdatePath,
    UpdatePathNode,
    read_node,
    write_node,
)

__all__ = [
    "Add",
    "ApplicationId",
    "AuthenticatedContent",
    "CachedStruct",
    "Capabilities",
    "Commit",
    "Content",
    "ContentType",
    "Credential",
    "CredentialType",
    "EncryptedGroupSecrets",
    "Extension",
    "ExtensionType",
    "ExternalInit",
    "ExternalPub",
    "ExternalSender",
    "ExternalSenders",
    "FramedContent",
    "FramedContentAuthData",
    "GroupContext",
    "GroupContextExtensions",
    "GroupInfo",
    "GroupSecrets",
    "HPKECiphertext",
    "KeyPackage",
    "LeafNode",
    "LeafNodeSource",
    "Lifetime",
    "MLSMessage",
    "MessageBody",
    "Node",
    "NodeType",
    "ParentNode",
    "PathSecret",
    "PreSharedKey",
    "PreSharedKeyID",
    "PrivateMessage",
    "Proposal",
    "ProposalBody",
    "ProposalOrRef",
    "ProposalOrRefType",
    "ProposalType",
    "ProtocolVersion",
    "PublicMessage",
    "RatchetTree",
    "ReInit",
    "Remove",
    "RequiredCapabilities",
    "Sender",
    "SenderData",
    "SenderType",
    "Struct",
    "Update",
    "UpdatePath",
    "UpdatePathNode",
    "Welcome",
    "WireFormat",
    "content_type_of",
    "read_content",
    "read_node",
    "write_content",
    "write_node",
]
