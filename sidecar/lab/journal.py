"""The state directory's journal: every resource is recorded before it is created.

One JSON object per line in `<state>/journal.jsonl`. The first line names the
prefix and the spec; later lines name namespaces, links, processes and paths.
Because each line is written (and flushed) before the thing it names exists,
`down` after a crash of `up` finds everything that may exist.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import LabStateError
from .spec import LabSpec

JOURNAL = "journal.jsonl"


@dataclass(frozen=True)
class ProcEntry:
    pid: int
    start_time: int
    pod: str
    what: str


@dataclass
class Recorded:
    prefix: str
    spec: LabSpec
    netns: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    procs: list[ProcEntry] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)


def proc_start_time(pid: int) -> int | None:
    """Start time of `pid` in clock ticks since boot, or None if it is gone.

    Together with the pid it identifies a process across pid reuse.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses; fields after it do not.
    return int(stat.rsplit(")", 1)[1].split()[19])


class Journal:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.path = state_dir / JOURNAL

    @classmethod
    def create(cls, state_dir: Path, *, prefix: str, spec: LabSpec) -> Journal:
        state_dir.mkdir(parents=True, exist_ok=True)
        journal = cls(state_dir)
        try:
            fd = os.open(journal.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError as err:
            raise LabStateError(
                f"{state_dir} already holds a lab; tear it down first (peertap lab down "
                f"--state {state_dir})"
            ) from err
        os.close(fd)
        journal._append({"op": "lab", "prefix": prefix, "spec": spec.model_dump(mode="json")})
        return journal

    def netns(self, name: str) -> None:
        self._append({"op": "netns", "name": name})

    def link(self, name: str) -> None:
        self._append({"op": "link", "name": name})

    def proc(self, *, pid: int, pod: str, what: str) -> None:
        start = proc_start_time(pid)
        if start is not None:
            self._append({"op": "proc", "pid": pid, "start": start, "pod": pod, "what": what})

    def owned(self, path: Path) -> None:
        """A file or directory `down` removes."""
        self._append({"op": "path", "path": str(path)})

    def _append(self, entry: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(entry) + "\n")

    def read(self) -> Recorded:
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError as err:
            raise LabStateError(f"{self.state_dir} holds no lab ({JOURNAL} missing)") from err
        entries = []
        for line in lines:
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                # A crash can cut the last line short; everything before it is whole.
                break
        if not entries or entries[0].get("op") != "lab":
            raise LabStateError(f"{self.path}: no lab header")
        try:
            spec = LabSpec.model_validate(entries[0]["spec"])
        except ValidationError as err:
            raise LabStateError(f"{self.path}: recorded spec is invalid") from err
        rec = Recorded(prefix=str(entries[0]["prefix"]), spec=spec)
        for e in entries[1:]:
            op = e.get("op")
            if op == "netns":
                rec.netns.append(e["name"])
            elif op == "link":
                rec.links.append(e["name"])
            elif op == "proc":
                rec.procs.append(
                    ProcEntry(pid=e["pid"], start_time=e["start"], pod=e["pod"], what=e["what"])
                )
            elif op == "path":
                rec.paths.append(e["path"])
        return rec
