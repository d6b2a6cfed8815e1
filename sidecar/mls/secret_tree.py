"""Secret tree and per-sender hash ratchets (RFC 9420 section 9), with deletion.

    encryption_secret at the root
      -> ExpandWithLabel(., "tree", "left"/"right", Nh) down to the sender's leaf
      -> "handshake" / "application" ratchet secrets (generation 0)
      -> per generation j: key_j, nonce_j, and secret_{j+1} (DeriveTreeSecret)

Deletion (section 9.2): a node secret is dropped as soon as its children are
derived, a leaf secret once its two ratchets exist, a ratchet secret once the
next one is derived, and a key/nonce once a message was decrypted with it.

Out-of-order delivery: a receiver may jump ahead at most ``MAX_FORWARD_DISTANCE``
generations in one step. Keys of skipped generations are kept while they are
among the ``OUT_OF_ORDER_WINDOW`` newest generations the ratchet derived, and
dropped after that. Asking for a generation that was consumed or dropped raises
``ReplayError``.
"""

from __future__ import annotations

from enum import Enum

from . import tree_math
from .codec import Reader, Writer
from .errors import ReplayError, ValidationError
from .suites import CipherSuite

__all__ = [
    "MAX_FORWARD_DISTANCE",
    "OUT_OF_ORDER_WINDOW",
    "HashRatchet",
    "RatchetType",
    "SecretTree",
    "sender_data_key_nonce",
]

MAX_FORWARD_DISTANCE = 1024
"""Most generations a receiver derives past its current position for one message."""

OUT_OF_ORDER_WINDOW = 128
"""How many of the newest derived generations keep their unused keys."""

_MAX_GENERATION = 0xFFFFFFFF


class RatchetType(Enum):
    HANDSHAKE = "handshake"
    APPLICATION = "application"


class HashRatchet:
    """One sender's handshake or application ratchet."""

    __slots__ = ("_keys", "_next", "_secret", "_suite")

    def __init__(self, suite: CipherSuite, secret: bytes) -> None:
        self._suite = suite
        self._secret = secret
        self._next = 0
        # generation -> (key, nonce), derived but not yet used; ascending generations
        self._keys: dict[int, tuple[bytes, bytes]] = {}

    @property
    def next_generation(self) -> int:
        """The generation the next derivation step produces."""
        return self._next

    def _step(self, *, with_keys: bool = True) -> tuple[int, bytes, bytes]:
        generation = self._next
        if generation > _MAX_GENERATION:
            raise ValidationError("ratchet exhausted (generation beyond 2^32-1)")
        suite, secret = self._suite, self._secret
        key = nonce = b""
        if with_keys:
            key = suite.derive_tree_secret(secret, "key", generation, suite.nk)
            nonce = suite.derive_tree_secret(secret, "nonce", generation, suite.nn)
        self._secret = suite.derive_tree_secret(secret, "secret", generation, suite.nh)
        self._next = generation + 1
        return generation, key, nonce

    def next(self) -> tuple[int, bytes, bytes]:
        """Sender: (generation, key, nonce) of a fresh generation, never handed out again."""
        return self._step()

    def key_nonce(self, generation: int) -> tuple[bytes, bytes]:
        """Receiver: (key, nonce) for ``generation`` without consuming it.

        Call ``consume`` once a message decrypted with it; until then a failed
        decryption (e.g. a corrupted message) does not burn the generation.
        """
        cached = self._keys.get(generation)
        if cached is not None:
            return cached
        if generation < self._next:
            raise ReplayError(f"generation {generation} already used or out of the window")
        if generation - self._next > MAX_FORWARD_DISTANCE:
            raise ValidationError(
                f"generation {generation} is more than {MAX_FORWARD_DISTANCE} ahead of {self._next}"
            )
        oldest_kept = generation + 1 - OUT_OF_ORDER_WINDOW
        while self._next <= generation:
            keep = self._next >= oldest_kept  # keys that would be dropped at once are not derived
            step_generation, key, nonce = self._step(with_keys=keep)
            if keep:
                self._keys[step_generation] = (key, nonce)
        while self._keys:
            oldest = next(iter(self._keys))
            if oldest >= oldest_kept:
                break
            del self._keys[oldest]
        return self._keys[generation]

    def consume(self, generation: int) -> None:
        """Delete the key and nonce of ``generation`` (after a successful decryption)."""
        self._keys.pop(generation, None)

    def get(self, generation: int) -> tuple[bytes, bytes]:
        """Receiver: (key, nonce) for ``generation``, consumed at once."""
        key_nonce = self.key_nonce(generation)
        self.consume(generation)
        return key_nonce

    def write(self, w: Writer) -> None:
        """Persist the ratchet: current secret, next generation, unused keys."""
        w.opaque(self._secret)
        w.u32(self._next)
        w.vector(self._keys.items(), _write_kept_key)

    @classmethod
    def read(cls, r: Reader, suite: CipherSuite) -> HashRatchet:
        ratchet = cls(suite, r.opaque())
        ratchet._next = r.u32()
        ratchet._keys = dict(r.vector(_read_kept_key))
        return ratchet


def _write_kept_key(w: Writer, item: tuple[int, tuple[bytes, bytes]]) -> None:
    generation, (key, nonce) = item
    w.u32(generation)
    w.opaque(key)
    w.opaque(nonce)


def _read_kept_key(r: Reader) -> tuple[int, tuple[bytes, bytes]]:
    generation = r.u32()
    return generation, (r.opaque(), r.opaque())


class SecretTree:
    """The secret tree of one epoch over ``n_leaves`` leaves."""

    __slots__ = ("_n_leaves", "_ratchets", "_secrets", "_suite")

    def __init__(self, suite: CipherSuite, encryption_secret: bytes, n_leaves: int) -> None:
        if n_leaves < 1:
            raise ValidationError("a secret tree needs at least one leaf")
        self._suite = suite
        self._n_leaves = n_leaves
        self._secrets: dict[int, bytes] = {tree_math.root(n_leaves): encryption_secret}
        self._ratchets: dict[int, tuple[HashRatchet, HashRatchet]] = {}

    @property
    def n_leaves(self) -> int:
        return self._n_leaves

    def ratchet(self, leaf_index: int, ratchet_type: RatchetType) -> HashRatchet:
        """The handshake or application ratchet of ``leaf_index`` (derived on first use)."""
        pair = self._ratchets.get(leaf_index)
        if pair is None:
            pair = self._ratchets[leaf_index] = self._derive_leaf(leaf_index)
        return pair[0] if ratchet_type is RatchetType.HANDSHAKE else pair[1]

    def _derive_leaf(self, leaf_index: int) -> tuple[HashRatchet, HashRatchet]:
        if not 0 <= leaf_index < self._n_leaves:
            raise ValidationError(f"leaf {leaf_index} outside a tree of {self._n_leaves} leaves")
        suite, secrets = self._suite, self._secrets
        target = tree_math.leaf_to_node(leaf_index)
        node = tree_math.root(self._n_leaves)
        while node != target:
            secret = secrets.pop(node, None)
            left, right = tree_math.left(node), tree_math.right(node)
            if secret is not None:
                secrets[left] = suite.expand_with_label(secret, "tree", b"left", suite.nh)
                secrets[right] = suite.expand_with_label(secret, "tree", b"right", suite.nh)
            node = left if target < node else right
        leaf_secret = secrets.pop(target)
        return (
            HashRatchet(suite, suite.expand_with_label(leaf_secret, "handshake", b"", suite.nh)),
            HashRatchet(suite, suite.expand_with_label(leaf_secret, "application", b"", suite.nh)),
        )

    def next(self, leaf_index: int, ratchet_type: RatchetType) -> tuple[int, bytes, bytes]:
        """Sender side: (generation, key, nonce)."""
        return self.ratchet(leaf_index, ratchet_type).next()

    def get(
        self, leaf_index: int, ratchet_type: RatchetType, generation: int
    ) -> tuple[bytes, bytes]:
        """Receiver side: (key, nonce), consumed; ReplayError if already consumed."""
        return self.ratchet(leaf_index, ratchet_type).get(generation)

    def write(self, w: Writer) -> None:
        """Persist what is left of the tree (state storage, not an MLS wire format)."""
        w.u32(self._n_leaves)
        w.vector(self._secrets.items(), _write_node_secret)
        w.vector(self._ratchets.items(), _write_leaf_ratchets)

    @classmethod
    def read(cls, r: Reader, suite: CipherSuite) -> SecretTree:
        tree = cls(suite, b"", r.u32())
        tree._secrets = dict(r.vector(_read_node_secret))
        tree._ratchets = dict(r.vector(lambda r: _read_leaf_ratchets(r, suite)))
        return tree


def _write_node_secret(w: Writer, item: tuple[int, bytes]) -> None:
    w.u32(item[0])
    w.opaque(item[1])


def _read_node_secret(r: Reader) -> tuple[int, bytes]:
    node = r.u32()
    return node, r.opaque()


def _write_leaf_ratchets(w: Writer, item: tuple[int, tuple[HashRatchet, HashRatchet]]) -> None:
    leaf, (handshake, application) = item
    w.u32(leaf)
    handshake.write(w)
    application.write(w)


def _read_leaf_ratchets(
    r: Reader, suite: CipherSuite
) -> tuple[int, tuple[HashRatchet, HashRatchet]]:
    leaf = r.u32()
    return leaf, (HashRatchet.read(r, suite), HashRatchet.read(r, suite))


def sender_data_key_nonce(
    suite: CipherSuite, sender_data_secret: bytes, ciphertext: bytes
) -> tuple[bytes, bytes]:
    """(key, nonce) protecting SenderData, from the first Nh bytes of the content ciphertext."""
    sample = ciphertext[: suite.nh]
    return (
        suite.expand_with_label(sender_data_secret, "key", sample, suite.nk),
        suite.expand_with_label(sender_data_secret, "nonce", sample, suite.nn),
    )
