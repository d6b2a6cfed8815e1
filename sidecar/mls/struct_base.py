"""Wire-struct foundations: the RFC 9420 enumerations, the Struct base classes,
and the small structs every other one is built from (Extension, Credential,
Capabilities, Lifetime, HPKECiphertext, GroupContext, extension payloads).

See ``structs`` for the conventions all wire structs follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Self

from .codec import Reader, Writer
from .errors import DecodeError, EncodeError

__all__ = [
    "ApplicationId",
    "CachedStruct",
    "Capabilities",
    "ContentType",
    "Credential",
    "CredentialType",
    "Extension",
    "ExtensionType",
    "ExternalPub",
    "ExternalSender",
    "ExternalSenders",
    "GroupContext",
    "HPKECiphertext",
    "LeafNodeSource",
    "Lifetime",
    "NodeType",
    "ProposalOrRefType",
    "ProposalType",
    "ProtocolVersion",
    "RequiredCapabilities",
    "SenderType",
    "Struct",
    "WireFormat",
    "read_extensions",
    "read_u16",
    "read_u32",
    "write_struct",
]


class ProtocolVersion(IntEnum):
    MLS10 = 1


class ContentType(IntEnum):
    APPLICATION = 1
    PROPOSAL = 2
    COMMIT = 3


class SenderType(IntEnum):
    MEMBER = 1
    EXTERNAL = 2
    NEW_MEMBER_PROPOSAL = 3
    NEW_MEMBER_COMMIT = 4


class WireFormat(IntEnum):
    PUBLIC_MESSAGE = 1
    PRIVATE_MESSAGE = 2
    WELCOME = 3
    GROUP_INFO = 4
    KEY_PACKAGE = 5


class CredentialType(IntEnum):
    BASIC = 1
    X509 = 2


class ExtensionType(IntEnum):
    APPLICATION_ID = 1
    RATCHET_TREE = 2
    REQUIRED_CAPABILITIES = 3
    EXTERNAL_PUB = 4
    EXTERNAL_SENDERS = 5


class ProposalType(IntEnum):
    ADD = 1
    UPDATE = 2
    REMOVE = 3
    PSK = 4
    REINIT = 5
    EXTERNAL_INIT = 6
    GROUP_CONTEXT_EXTENSIONS = 7


class LeafNodeSource(IntEnum):
    KEY_PACKAGE = 1
    UPDATE = 2
    COMMIT = 3


class NodeType(IntEnum):
    LEAF = 1
    PARENT = 2


class ProposalOrRefType(IntEnum):
    PROPOSAL = 1
    REFERENCE = 2


class Struct:
    """encode/decode around the per-class write/read; tuple-normalises vector fields."""

    _VECTORS: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        for name in self._VECTORS:
            value = getattr(self, name)
            if not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))

    def write(self, w: Writer) -> None:
        raise NotImplementedError

    @classmethod
    def read(cls, r: Reader) -> Self:
        raise NotImplementedError

    def encode(self) -> bytes:
        w = Writer()
        self.write(w)
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> Self:
        r = Reader(data)
        value = cls.read(r)
        r.done()
        return value


class CachedStruct(Struct):
    """A struct that keeps its encoding: subclasses implement ``_write``/``_read``."""

    def _write(self, w: Writer) -> None:
        raise NotImplementedError

    @classmethod
    def _read(cls, r: Reader) -> Self:
        raise NotImplementedError

    def encode(self) -> bytes:
        cached: bytes | None = self.__dict__.get("_encoding")
        if cached is None:
            w = Writer()
            self._write(w)
            cached = self.__dict__["_encoding"] = w.getvalue()
        return cached

    def write(self, w: Writer) -> None:
        w.raw(self.encode())

    @classmethod
    def read(cls, r: Reader) -> Self:
        start = r.pos
        value = cls._read(r)
        value.__dict__["_encoding"] = r.slice(start, r.pos)
        return value


def read_u16(r: Reader) -> int:
    return r.u16()


def read_u32(r: Reader) -> int:
    return r.u32()


def write_struct(w: Writer, item: Struct) -> None:
    item.write(w)


# -- basic building blocks ------------------------------------------------------------


@dataclass(frozen=True)
class Extension(Struct):
    extension_type: int
    extension_data: bytes

    def write(self, w: Writer) -> None:
        w.u16(self.extension_type)
        w.opaque(self.extension_data)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.u16(), r.opaque())


def read_extensions(r: Reader) -> tuple[Extension, ...]:
    return tuple(r.vector(Extension.read))


@dataclass(frozen=True)
class HPKECiphertext(Struct):
    kem_output: bytes
    ciphertext: bytes

    def write(self, w: Writer) -> None:
        w.opaque(self.kem_output)
        w.opaque(self.ciphertext)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque(), r.opaque())


@dataclass(frozen=True)
class Credential(Struct):
    """Basic (``identity``) or X.509 (``certificates``, DER each) credential."""

    credential_type: int
    identity: bytes = b""
    certificates: tuple[bytes, ...] = ()
    _VECTORS = ("certificates",)

    @classmethod
    def basic(cls, identity: bytes) -> Self:
        return cls(CredentialType.BASIC, identity=identity)

    @classmethod
    def x509(cls, certificates: tuple[bytes, ...]) -> Self:
        return cls(CredentialType.X509, certificates=certificates)

    def write(self, w: Writer) -> None:
        w.u16(self.credential_type)
        if self.credential_type == CredentialType.BASIC:
            w.opaque(self.identity)
        elif self.credential_type == CredentialType.X509:
            w.vector(self.certificates, Writer.opaque)
        else:
            raise EncodeError(f"unknown credential type {self.credential_type}")

    @classmethod
    def read(cls, r: Reader) -> Self:
        credential_type = r.u16()
        if credential_type == CredentialType.BASIC:
            return cls(credential_type, identity=r.opaque())
        if credential_type == CredentialType.X509:
            return cls(credential_type, certificates=tuple(r.vector(Reader.opaque)))
        raise DecodeError(f"unknown credential type {credential_type}")


@dataclass(frozen=True)
class Capabilities(Struct):
    versions: tuple[int, ...] = ()
    cipher_suites: tuple[int, ...] = ()
    extensions: tuple[int, ...] = ()
    proposals: tuple[int, ...] = ()
    credentials: tuple[int, ...] = ()
    _VECTORS = ("versions", "cipher_suites", "extensions", "proposals", "credentials")

    def write(self, w: Writer) -> None:
        for values in (
            self.versions,
            self.cipher_suites,
            self.extensions,
            self.proposals,
            self.credentials,
        ):
            w.vector(values, Writer.u16)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(*(tuple(r.vector(read_u16)) for _ in range(5)))


@dataclass(frozen=True)
class Lifetime(Struct):
    not_before: int
    not_after: int

    def write(self, w: Writer) -> None:
        w.u64(self.not_before)
        w.u64(self.not_after)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.u64(), r.u64())


# -- group context and extension payloads ---------------------------------------------


@dataclass(frozen=True)
class GroupContext(CachedStruct):
    version: int
    cipher_suite: int
    group_id: bytes
    epoch: int
    tree_hash: bytes
    confirmed_transcript_hash: bytes
    extensions: tuple[Extension, ...] = ()
    _VECTORS = ("extensions",)

    def _write(self, w: Writer) -> None:
        w.u16(self.version)
        w.u16(self.cipher_suite)
        w.opaque(self.group_id)
        w.u64(self.epoch)
        w.opaque(self.tree_hash)
        w.opaque(self.confirmed_transcript_hash)
        w.vector(self.extensions, write_struct)

    @classmethod
    def _read(cls, r: Reader) -> Self:
        return cls(
            r.u16(), r.u16(), r.opaque(), r.u64(), r.opaque(), r.opaque(), read_extensions(r)
        )


@dataclass(frozen=True)
class ApplicationId(Struct):
    application_id: bytes

    def write(self, w: Writer) -> None:
        w.opaque(self.application_id)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque())


@dataclass(frozen=True)
class RequiredCapabilities(Struct):
    extension_types: tuple[int, ...] = ()
    proposal_types: tuple[int, ...] = ()
    credential_types: tuple[int, ...] = ()
    _VECTORS = ("extension_types", "proposal_types", "credential_types")

    def write(self, w: Writer) -> None:
        w.vector(self.extension_types, Writer.u16)
        w.vector(self.proposal_types, Writer.u16)
        w.vector(self.credential_types, Writer.u16)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(*(tuple(r.vector(read_u16)) for _ in range(3)))


@dataclass(frozen=True)
class ExternalPub(Struct):
    external_pub: bytes

    def write(self, w: Writer) -> None:
        w.opaque(self.external_pub)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque())


@dataclass(frozen=True)
class ExternalSender(Struct):
    signature_key: bytes
    credential: Credential

    def write(self, w: Writer) -> None:
        w.opaque(self.signature_key)
        self.credential.write(w)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(r.opaque(), Credential.read(r))


@dataclass(frozen=True)
class ExternalSenders(Struct):
    """The external_senders extension payload: ``ExternalSender external_senders<V>``."""

    senders: tuple[ExternalSender, ...]
    _VECTORS = ("senders",)

    def write(self, w: Writer) -> None:
        w.vector(self.senders, write_struct)

    @classmethod
    def read(cls, r: Reader) -> Self:
        return cls(tuple(r.vector(ExternalSender.read)))
