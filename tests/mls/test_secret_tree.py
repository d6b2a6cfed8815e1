"""Secret tree: ratchets, out-of-order window, replay, deletion."""

from __future__ import annotations

import pytest

from peertap.sidecar.mls.codec import Reader, Writer
from peertap.sidecar.mls.errors import ReplayError, ValidationError
from peertap.sidecar.mls.secret_tree import (
    MAX_FORWARD_DISTANCE,
    OUT_OF_ORDER_WINDOW,
    RatchetType,
    SecretTree,
)
from peertap.sidecar.mls.suites import get_suite

SUITE = get_suite(1)
HS, APP = RatchetType.HANDSHAKE, RatchetType.APPLICATION


def _tree(n_leaves: int = 4) -> SecretTree:
    return SecretTree(SUITE, b"\x07" * SUITE.nh, n_leaves)


def test_sender_and_receiver_derive_the_same_keys_in_order() -> None:
    sender, receiver = _tree(), _tree()
    for expected_generation in range(5):
        generation, key, nonce = sender.next(2, APP)
        assert generation == expected_generation
        assert receiver.get(2, APP, generation) == (key, nonce)


def test_keys_differ_across_leaves_ratchets_and_generations() -> None:
    tree = _tree()
    keys = {
        tree.get(leaf, kind, gen)[0] for leaf in range(4) for kind in RatchetType for gen in (0, 1)
    }
    assert len(keys) == 4 * 2 * 2


def test_replayed_generation_raises_replay_error() -> None:
    tree = _tree()
    tree.get(1, HS, 0)
    with pytest.raises(ReplayError):
        tree.get(1, HS, 0)


def test_out_of_order_generations_within_the_window_are_accepted_once() -> None:
    sender, receiver = _tree(), _tree()
    sent = [sender.next(0, APP) for _ in range(10)]
    for generation, key, nonce in reversed(sent):
        assert receiver.get(0, APP, generation) == (key, nonce)
    with pytest.raises(ReplayError):
        receiver.get(0, APP, 3)


def test_skipped_generations_older_than_the_window_are_dropped() -> None:
    tree = _tree()
    newest = OUT_OF_ORDER_WINDOW + 5
    tree.get(0, APP, newest)
    with pytest.raises(ReplayError):
        tree.get(0, APP, newest - OUT_OF_ORDER_WINDOW)
    tree.get(0, APP, newest - OUT_OF_ORDER_WINDOW + 1)  # the oldest one still kept


def test_jumping_further_than_the_maximum_forward_distance_is_rejected() -> None:
    tree = _tree()
    with pytest.raises(ValidationError):
        tree.get(0, APP, MAX_FORWARD_DISTANCE + 1)
    tree.get(0, APP, MAX_FORWARD_DISTANCE)


def test_a_generation_is_not_burnt_until_it_is_consumed() -> None:
    ratchet = _tree().ratchet(3, HS)
    first = ratchet.key_nonce(2)
    assert ratchet.key_nonce(2) == first  # e.g. the first decryption attempt failed
    ratchet.consume(2)
    with pytest.raises(ReplayError):
        ratchet.key_nonce(2)


def test_a_sender_never_hands_out_a_generation_twice() -> None:
    tree = _tree()
    tree.get(1, APP, 3)
    assert tree.next(1, APP)[0] == 4


def test_handshake_and_application_ratchets_advance_independently() -> None:
    tree = _tree()
    tree.next(0, APP)
    tree.next(0, APP)
    assert tree.next(0, HS)[0] == 0


def test_node_secrets_are_deleted_once_their_children_exist() -> None:
    tree = _tree(8)
    for leaf in range(8):
        tree.ratchet(leaf, HS)
    assert tree._secrets == {}  # every node and leaf secret was consumed


def test_leaf_outside_the_tree_is_rejected() -> None:
    with pytest.raises(ValidationError):
        _tree(4).get(4, HS, 0)


def test_single_leaf_tree_uses_the_root_as_the_leaf() -> None:
    assert _tree(1).get(0, HS, 0) == _tree(1).ratchet(0, HS).next()[1:]


def test_a_persisted_tree_keeps_its_position_window_and_deletions() -> None:
    tree = _tree(8)
    tree.get(2, APP, 5)  # generations 0-4 of leaf 2 wait in the window
    tree.next(6, HS)
    w = Writer()
    tree.write(w)
    reader = Reader(w.getvalue())
    restored = SecretTree.read(reader, SUITE)
    reader.done()
    assert restored._secrets == tree._secrets

    fresh = _tree(8)
    assert restored.get(2, APP, 3) == fresh.get(2, APP, 3)
    with pytest.raises(ReplayError):
        restored.get(2, APP, 5)
    assert restored.next(6, HS)[0] == 1
    assert restored.get(7, APP, 0) == fresh.get(7, APP, 0)
