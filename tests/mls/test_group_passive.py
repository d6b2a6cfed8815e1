"""Passive-client scenarios of the handling-commit / random kind, generated here with our
own group code, run through the vector dispatcher like the working group's files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peertap.sidecar.mls import conformance
from peertap.sidecar.mls.group import Group, GroupOptions, make_key_package
from peertap.sidecar.mls.structs import (
    Extension,
    MLSMessage,
    RequiredCapabilities,
    WireFormat,
)
from peertap.sidecar.mls.suites import get_suite

PSK_ID = b"external psk"
PSK = b"\x05" * 32
REQUIRED = RequiredCapabilities((), (), (1,)).encode()


def _scenario(suite_id: int, *, tree_in_welcome: bool, private: bool) -> dict[str, object]:
    suite = get_suite(suite_id)
    options = GroupOptions(
        ratchet_tree_in_group_info=tree_in_welcome,
        handshake_wire_format=WireFormat.PRIVATE_MESSAGE if private else WireFormat.PUBLIC_MESSAGE,
    )

    def signer() -> bytes:
        return suite.generate_signature_key_pair()[0]

    alice = Group.create(suite_id, identity=b"alice", signature_private=signer(), options=options)
    bob_kp = make_key_package(suite_id, identity=b"bob", signature_private=signer())
    passive = make_key_package(suite_id, identity=b"passive", signature_private=signer())
    result = alice.commit(add=[bob_kp.key_package, passive.key_package])
    assert result.welcome is not None
    tree = None if tree_in_welcome else alice.ratchet_tree.encode()
    bob = Group.join_from_welcome(result.welcome, bob_kp, tree, options=options)
    members = [alice, bob]
    for g in members:
        g.add_external_psk(PSK_ID, PSK)
    epochs: list[dict[str, object]] = []
    watcher = Group.join_from_welcome(result.welcome, passive, tree)
    initial_authenticator = watcher.epoch_authenticator.hex()
    watcher.add_external_psk(PSK_ID, PSK)

    def step(proposals: list[MLSMessage], committer: Group, commit: MLSMessage) -> None:
        for g in members:
            if g is not committer and g.active:
                g.process(commit)
        watcher.process(commit)
        epochs.append(
            {
                "proposals": [p.encode().hex() for p in proposals],
                "commit": commit.encode().hex(),
                "epoch_authenticator": committer.epoch_authenticator.hex(),
            }
        )

    def propose(sender: Group, message: MLSMessage) -> MLSMessage:
        for g in members:
            if g is not sender:
                g.process(message)
        watcher.process(message)
        return message

    # 1. empty commit with path
    step([], alice, alice.commit().commit_message)
    # 2. proposals by reference from two members: update + PSK, committed by the other
    p1 = propose(bob, bob.propose_update())
    p2 = propose(alice, alice.propose_psk(PSK_ID))
    step([p1, p2], alice, alice.commit().commit_message)
    # 3. an add without path, then the new member joins
    carol_kp = make_key_package(suite_id, identity=b"carol", signature_private=signer())
    res = bob.commit(add=[carol_kp.key_package], path=False)
    step([], bob, res.commit_message)
    assert res.welcome is not None
    carol_tree = None if tree_in_welcome else bob.ratchet_tree.encode()
    carol = Group.join_from_welcome(res.welcome, carol_kp, carol_tree, options=options)
    carol.add_external_psk(PSK_ID, PSK)
    members.append(carol)
    # 4. group context extensions by reference, committed by carol
    p3 = propose(alice, alice.propose_group_context_extensions([Extension(3, REQUIRED)]))
    step([p3], carol, carol.commit().commit_message)
    # 5. an external join
    dave, ext_commit = Group.join_external(
        carol.group_info(),
        identity=b"dave",
        signature_private=signer(),
        ratchet_tree=None if tree_in_welcome else carol.ratchet_tree.encode(),
        options=options,
    )
    for g in members:
        g.process(ext_commit)
    watcher.process(ext_commit)
    members.append(dave)
    epochs.append(
        {
            "proposals": [],
            "commit": ext_commit.encode().hex(),
            "epoch_authenticator": dave.epoch_authenticator.hex(),
        }
    )
    # 6. remove by reference plus a remove by value
    p4 = propose(carol, carol.propose_remove(alice.own_leaf_index))
    step([p4], dave, dave.commit(remove=[bob.own_leaf_index]).commit_message)
    assert watcher.epoch_authenticator == dave.epoch_authenticator

    return {
        "cipher_suite": suite_id,
        "external_psks": [{"psk_id": PSK_ID.hex(), "psk": PSK.hex()}],
        "key_package": MLSMessage(passive.key_package).encode().hex(),
        "signature_priv": passive.signature_private.hex(),
        "encryption_priv": passive.encryption_private.hex(),
        "init_priv": passive.init_private.hex(),
        "welcome": result.welcome.encode().hex(),
        "ratchet_tree": None if tree is None else tree.hex(),
        "initial_epoch_authenticator": initial_authenticator,
        "epochs": epochs,
    }


@pytest.mark.parametrize(
    ("suite_id", "tree_in_welcome", "private"),
    [(1, True, False), (2, False, True), (3, True, True)],
)
def test_generated_passive_client_scenarios_pass(
    tmp_path: Path, suite_id: int, tree_in_welcome: bool, private: bool
) -> None:
    case = _scenario(suite_id, tree_in_welcome=tree_in_welcome, private=private)
    path = tmp_path / "passive-client-handling-commit.json"
    path.write_text(json.dumps([case]))
    assert conformance.run_file(path) == (1, 0)


def test_a_wrong_epoch_authenticator_fails_the_scenario(tmp_path: Path) -> None:
    case = _scenario(1, tree_in_welcome=True, private=False)
    epochs = case["epochs"]
    assert isinstance(epochs, list)
    epochs[-1]["epoch_authenticator"] = "00" * 32
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps([case]))
    assert conformance.run_file(path) == (0, 1)
