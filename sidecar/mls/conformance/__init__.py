"""Run the MLS working group's test vectors (``peertap mls-vectors FILE...``).

Each vector file is a JSON array of cases. The format is recognised by the keys of its
first case, never by the file name, so renamed or extra files of a known format
(e.g. other passive-client scenarios) run too. Each format has a module here with
``run_case(case)`` that raises on a mismatch (``result.ConformanceError``) or on any
error of the implementation.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["FORMATS", "UnrecognisedFormatError", "detect_format", "main", "run_file"]

# module name -> keys that identify the format (all must be present in the first case)
FORMATS: dict[str, frozenset[str]] = {
    "tree_math": frozenset({"n_leaves", "n_nodes", "root", "left", "right", "parent", "sibling"}),
    "crypto_basics": frozenset(
        {"cipher_suite", "ref_hash", "expand_with_label", "derive_secret", "sign_with_label"}
    ),
    "secret_tree": frozenset({"cipher_suite", "sender_data", "encryption_secret", "leaves"}),
    "message_protection": frozenset(
        {"cipher_suite", "membership_key", "sender_data_secret", "proposal_pub", "application"}
    ),
    "key_schedule": frozenset({"cipher_suite", "group_id", "initial_init_secret", "epochs"}),
    "psk_secret": frozenset({"cipher_suite", "psks", "psk_secret"}),
    "transcript_hashes": frozenset(
        {
            "cipher_suite",
            "confirmation_key",
            "authenticated_content",
            "interim_transcript_hash_before",
        }
    ),
    "welcome": frozenset({"cipher_suite", "init_priv", "signer_pub", "key_package", "welcome"}),
    "tree_operations": frozenset(
        {"cipher_suite", "tree_before", "proposal", "proposal_sender", "tree_after"}
    ),
    "tree_validation": frozenset(
        {"cipher_suite", "tree", "group_id", "resolutions", "tree_hashes"}
    ),
    "treekem": frozenset({"cipher_suite", "ratchet_tree", "leaves_private", "update_paths"}),
    "messages": frozenset({"mls_welcome", "mls_group_info", "mls_key_package", "commit"}),
    "passive_client": frozenset(
        {
            "cipher_suite",
            "key_package",
            "init_priv",
            "welcome",
            "initial_epoch_authenticator",
            "epochs",
        }
    ),
    "deserialization": frozenset({"vlbytes_header", "length"}),
}


class UnrecognisedFormatError(ValueError):
    """The file is not a JSON array of cases of a known vector format."""


def detect_format(cases: Any) -> str:
    """Name of the runner module for ``cases`` (a decoded vector file)."""
    if not isinstance(cases, list) or not cases or not isinstance(cases[0], dict):
        raise UnrecognisedFormatError("not a non-empty JSON array of objects")
    keys = set(cases[0])
    matches = [name for name, sig in FORMATS.items() if sig <= keys]
    if not matches:
        raise UnrecognisedFormatError(f"no known format has keys {sorted(keys)}")
    # the most specific signature wins (none of the current ones overlap)
    return max(matches, key=lambda name: len(FORMATS[name]))


FailureHook = Callable[[int, BaseException], None]


def run_cases(
    fmt: str, cases: Iterable[Any], on_failure: FailureHook | None = None
) -> tuple[int, int]:
    try:
        run_case = importlib.import_module(f"{__name__}.{fmt}").run_case
    except ImportError as err:  # a runner not written yet fails every case
        missing = err

        def run_case(case: Any) -> None:
            raise missing

    passed = failed = 0
    for i, case in enumerate(cases):
        try:
            run_case(case)
        except Exception as err:  # any error of the implementation fails the case
            failed += 1
            if on_failure is not None:
                on_failure(i, err)
        else:
            passed += 1
    return passed, failed


def run_file(path: str | Path, on_failure: FailureHook | None = None) -> tuple[int, int]:
    """Run every case of one vector file; return ``(passed, failed)``.

    Raises ``UnrecognisedFormatError`` when the content matches no known format.
    """
    try:
        cases = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UnrecognisedFormatError(f"cannot read JSON: {err}") from err
    return run_cases(detect_format(cases), cases, on_failure)


def main(paths: Sequence[str]) -> int:
    """Print ``PATH: N passed, M failed`` per file; non-zero on any failure."""
    status = 0
    for path in paths:
        shown: list[str] = []

        def note(i: int, err: BaseException, shown: list[str] = shown) -> None:
            if len(shown) < 3:
                shown.append(f"  case {i}: {type(err).__name__}: {err}")

        try:
            passed, failed = run_file(path, note)
        except UnrecognisedFormatError as err:
            print(f"{path}: unrecognised format ({err})")
            status = 1
            continue
        print(f"{path}: {passed} passed, {failed} failed")
        for line in shown:
            print(line, file=sys.stderr)
        if failed:
            status = 1
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
