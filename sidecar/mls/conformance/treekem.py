"""Runner for treekem vectors: process and create UpdatePaths."""

from __future__ import annotations

from typing import Any

from ..ratchet_tree import RatchetTree, decode_tree
from ..structs import GroupContext, ProtocolVersion, UpdatePath
from ..suites import CipherSuite, get_suite
from ..treekem import (
    PathKeys,
    create_update_path,
    decrypt_update_path,
    derive_node_key_pair,
    merge_update_path,
)
from .result import ConformanceError, check

__all__ = ["run_case"]


def _private_states(
    suite: CipherSuite, tree: RatchetTree, leaves: list[dict[str, Any]]
) -> dict[int, PathKeys]:
    states: dict[int, PathKeys] = {}
    for entry in leaves:
        index = entry["index"]
        keys = PathKeys(index)
        enc_priv = bytes.fromhex(entry["encryption_priv"])
        keys.set(2 * index, enc_priv, suite.hpke_public_from_private(enc_priv))
        for ps in entry["path_secrets"]:
            private, public = derive_node_key_pair(suite, bytes.fromhex(ps["path_secret"]))
            keys.set(ps["node"], private, public)
        for x in keys.keys:
            if keys.private_for(tree, x) is None:
                raise ConformanceError(
                    f"leaves_private[{index}]", f"key for node {x} does not match the tree"
                )
        states[index] = keys
    return states


def run_case(case: dict[str, Any]) -> None:
    suite = get_suite(case["cipher_suite"])
    group_id = bytes.fromhex(case["group_id"])
    tree = decode_tree(suite, bytes.fromhex(case["ratchet_tree"]))
    states = _private_states(suite, tree, case["leaves_private"])
    signature_privs = {
        e["index"]: bytes.fromhex(e["signature_priv"]) for e in case["leaves_private"]
    }

    def context_for(tree_hash: bytes) -> bytes:
        return GroupContext(
            ProtocolVersion.MLS10,
            suite.id,
            group_id,
            case["epoch"],
            tree_hash,
            bytes.fromhex(case["confirmed_transcript_hash"]),
            (),
        ).encode()

    for k, entry in enumerate(case["update_paths"]):
        where = f"update_paths[{k}]"
        sender = entry["sender"]
        path = UpdatePath.decode(bytes.fromhex(entry["update_path"]))
        after = tree.copy()
        fdp = merge_update_path(after, sender, path)
        check(
            f"{where}.tree_hash_after", after.tree_hash(), bytes.fromhex(entry["tree_hash_after"])
        )
        context = context_for(after.tree_hash())
        for j, keys in states.items():
            if j == sender or tree.leaf(j) is None:
                continue
            _, path_secret, commit_secret = decrypt_update_path(
                after, keys.copy(), sender, path, fdp, context
            )
            check(
                f"{where}.path_secrets[{j}]", path_secret, bytes.fromhex(entry["path_secrets"][j])
            )
            check(f"{where}.commit_secret", commit_secret, bytes.fromhex(entry["commit_secret"]))

        # a fresh UpdatePath from the same sender must be processable by everyone
        mine = tree.copy()
        leaf = mine.leaf(sender)
        assert leaf is not None
        new_path, secrets = create_update_path(
            mine,
            sender,
            leaf,
            signature_private=signature_privs[sender],
            group_id=group_id,
            context_for=context_for,
        )
        theirs = tree.copy()
        fdp = merge_update_path(theirs, sender, new_path)
        check(f"{where}.new tree hash", theirs.tree_hash(), mine.tree_hash())
        context = context_for(theirs.tree_hash())
        for j, keys in states.items():
            if j == sender or tree.leaf(j) is None:
                continue
            _, _, commit_secret = decrypt_update_path(
                theirs, keys.copy(), sender, new_path, fdp, context
            )
            check(f"{where}.new commit_secret[{j}]", commit_secret, secrets.commit_secret)
