"""Fuzz every parser that takes bytes from a peer (targets: tests/fuzz/fuzz_targets/).

    hack/fuzz.py                          every target, 1,000,000 inputs each
    hack/fuzz.py --runs 20000 --target mls_message --target credentials
    hack/fuzz.py --target fragments --reproduce build/fuzz/fragments/crash-...

Each target runs in its own process. The atheris engine (`pip install -e '.[fuzz]'`)
is coverage guided: it starts from the target's seed corpus (valid inputs built with
the project's encoders) and keeps the inputs that reach new code in
build/fuzz/<target>/corpus/ for the next run. Without atheris, or with
`--engine mutate`, inputs are plain mutants of the seeds. An input that makes a
target fail is written to build/fuzz/<target>/crash-<hash>; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import shutil
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "fuzz"))

from fuzz_targets import TARGETS, load  # noqa: E402
from fuzz_targets.mutate import inputs  # noqa: E402

OUT = ROOT / "build" / "fuzz"
DEFAULT_RUNS = 1_000_000
TIMEOUT_S = 20  # one input taking longer is a hang


def _engine(requested: str) -> str:
    if requested != "auto":
        return requested
    return "atheris" if importlib.util.find_spec("atheris") is not None else "mutate"


def _dirs(name: str) -> tuple[Path, Path, Path]:
    base = OUT / name
    corpus, seeds = base / "corpus", base / "seeds"
    corpus.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(seeds, ignore_errors=True)
    seeds.mkdir(parents=True)
    return base, corpus, seeds


def _write_seeds(directory: Path, seeds: list[bytes]) -> None:
    for data in seeds:
        (directory / hashlib.sha1(data).hexdigest()).write_bytes(data)


def _worker_atheris(name: str, runs: int, max_len: int) -> None:
    import atheris  # type: ignore[import-not-found]

    with atheris.instrument_imports(include=["peertap", "fuzz_targets"]):
        target = load(name)
    base, corpus, seeds = _dirs(name)
    _write_seeds(seeds, target.seeds())
    argv = [
        sys.argv[0],
        f"-runs={runs}",
        f"-timeout={TIMEOUT_S}",
        f"-artifact_prefix={base}/",
        "-print_final_stats=1",
        str(corpus),
        str(seeds),
    ]
    if max_len:
        argv.insert(1, f"-max_len={max_len}")
    atheris.Setup(argv, target.check)
    atheris.Fuzz()


def _worker_mutate(name: str, runs: int, seed: int) -> int:
    target = load(name)
    base, _, seeds_dir = _dirs(name)
    seeds = target.seeds()
    _write_seeds(seeds_dir, seeds)
    count = 0

    def hang(signum: int, frame: object) -> None:
        raise TimeoutError(f"one input took more than {TIMEOUT_S} s")

    signal.signal(signal.SIGALRM, hang)
    for data in inputs(seeds, runs, seed):
        count += 1
        signal.alarm(TIMEOUT_S)
        try:
            target.check(data)
        except Exception:
            crash = base / f"crash-{hashlib.sha1(data).hexdigest()}"
            crash.write_bytes(data)
            traceback.print_exc()
            print(f"{name}: input {count} failed, written to {crash}", flush=True)
            return 1
        finally:
            signal.alarm(0)
    print(f"{name}: {count} inputs, no failure", flush=True)
    return 0


def _reproduce(name: str, path: Path) -> int:
    data = path.read_bytes()
    try:
        load(name).check(data)
    except Exception:
        traceback.print_exc()
        print(f"{name}: {path} fails ({len(data)} bytes: {data.hex()})")
        return 1
    print(f"{name}: {path} passes")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--target", action="append", choices=TARGETS, help="default: all")
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="inputs per target")
    parser.add_argument("--engine", choices=("auto", "atheris", "mutate"), default="auto")
    parser.add_argument("--max-len", type=int, default=0, help="atheris: longest input")
    parser.add_argument("--seed", type=int, default=0, help="mutate: random seed")
    parser.add_argument("--reproduce", type=Path, help="run one input file through the target")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    engine = _engine(args.engine)
    if args.worker:
        if engine == "atheris":
            _worker_atheris(args.worker, args.runs, args.max_len)
        return _worker_mutate(args.worker, args.runs, args.seed)
    names = args.target or list(TARGETS)
    if args.reproduce:
        return max(_reproduce(name, args.reproduce) for name in names)
    print(f"engine {engine}, {args.runs} inputs per target; logs in {OUT}/<target>/log", flush=True)
    failed = []
    for name in names:
        started = time.monotonic()
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name]
        cmd += ["--runs", str(args.runs), "--engine", engine, "--seed", str(args.seed)]
        cmd += ["--max-len", str(args.max_len)]
        log = OUT / name / "log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            code = subprocess.call(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        took = time.monotonic() - started
        text = log.read_text(errors="replace").splitlines()
        done = [line for line in text if line.startswith(("Done ", f"{name}: "))]
        result = "ok" if code == 0 else f"FAILED (exit {code})"
        print(f"{name:16} {result} in {took:.0f} s: {done[-1] if done else ''}", flush=True)
        if code != 0:
            failed.append(name)
            print("\n".join(line for line in text[-40:] if not line.startswith('"')), flush=True)
    if failed:
        print(f"failing targets: {', '.join(failed)}; inputs in {OUT}/<target>/crash-*")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
