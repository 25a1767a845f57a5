"""Every time the docs state, measured: run the documented commands, write the seconds, and
write them into the docs.

A newcomer reads "13 s" and sees 175 s: a documented time is only worth what its measurement
is. Each entry of `COMMANDS` is a command the docs give, run as they give it, from a fresh clone
of this repository (so `make install` is timed as a newcomer meets it), one after another on
an otherwise idle machine. The seconds go to `benchmarks/results/doc_times.json`, and with
`--write-docs` into every span of the docs marked `<!-- time:NAME -->...<!-- /time -->`
(`tests/test_doc_commands.py` checks that each span says what the file holds).

    python benchmarks/doc_times.py                # measure, write the JSON
    python benchmarks/doc_times.py --write-docs   # measure, write the JSON and the docs
    python benchmarks/doc_times.py --docs-only    # write the docs from the committed JSON
    python benchmarks/doc_times.py --only smoke help   # some commands (the others keep their numbers)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "doc_times.json"
#: Files whose `<!-- time:NAME -->` spans are written.
DOCS = [REPO / "README.md", REPO / "docs" / "quickstart.md"]
SPAN = re.compile(r"<!-- time:(?P<name>[a-z0-9_]+) -->(?P<text>.*?)<!-- /time -->")

SMOKE = ("python -m kgnet.train --set data.samples_per_class=4 --set train.epochs=1 --set train.min_steps=0 "
         "--set data.test_per_class=20")

#: name -> (what the docs call it, shell command run in the fresh clone; `python` is the venv's).
#: In order: `setup` makes the venv the others use, `demo` makes the run `explain` reads.
COMMANDS: dict[str, tuple[str, str]] = {
    "setup": ("`make install` in a fresh clone (the set-up `make demo` and `make test` start with)", "make install"),
    "demo": ("`make demo` once set up: the ontology check and `python -m kgnet.train`", "make demo"),
    "help": ("`python -m kgnet.train --help`", "python -m kgnet.train --help"),
    "smoke": ("the quickstart's smoke run", f"{SMOKE} --out runs/smoke"),
    "smoke_all_test": ("the smoke run scoring all 10,000 test images",
                       SMOKE.replace(" --set data.test_per_class=20", "") + " --out runs/smoke-all-test"),
    "smoke_min_steps": ("the smoke run with the default floor of 250 steps",
                        SMOKE.replace(" --set train.min_steps=0", "") + " --out runs/smoke-min-steps"),
    "explain": ("`python -m kgnet.explain --samples 12` on the demo's run",
                "python -m kgnet.explain --run runs/demo --samples 12"),
    # the measuring run leaves out the one test that checks the numbers it is about to write
    "test": ("`make test` once set up", "PYTEST_ADDOPTS='--deselect "
             "tests/test_doc_commands.py::test_every_documented_time_is_the_measured_one' make test"),
}


def format_seconds(seconds: float) -> str:
    """How the docs write a measured time: "0.1 s" below 10 s, "13 s" below 100 s, else minutes
    to a tenth."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    return f"{seconds:.0f} s" if seconds < 100 else f"{seconds / 60:.1f} min"


def _measure(names: list[str]) -> dict[str, float]:
    """Seconds of each command of `names`, run in a fresh clone of the committed tree."""
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="kgnet-doc-times-") as tmp:
        clone = Path(tmp) / "kgnet"
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        venv = clone / ".venv" / "bin"
        env = {**os.environ, "PATH": f"{venv}:{os.environ['PATH']}", "VIRTUAL_ENV": str(clone / ".venv"),
               "KGNET_CACHE": str(Path(tmp) / "cache"),
               # a newcomer's uv has nothing cached: the set-up unpacks every wheel
               "UV_CACHE_DIR": str(Path(tmp) / "uv-cache")}
        for name, (_, command) in COMMANDS.items():
            needed = name in names or (name == "setup") or (name == "demo" and "explain" in names)
            if not needed:
                continue
            started = time.perf_counter()
            done = subprocess.run(command, shell=True, cwd=clone, env=env, capture_output=True, text=True)
            elapsed = time.perf_counter() - started
            if done.returncode != 0:
                raise SystemExit(f"{name}: `{command}` failed ({done.returncode}):\n{done.stdout[-3000:]}\n"
                                 f"{done.stderr[-2000:]}")
            if name == "demo":  # the demo's run folder is named by the time; explain reads it as runs/demo
                (clone / "runs" / "demo").symlink_to(_newest_run(clone / "runs"))
            print(f"{name}: {format_seconds(elapsed)} ({elapsed:.1f} s)", flush=True)
            if name in names:
                seconds[name] = round(elapsed, 1)
    return seconds


def _newest_run(runs: Path) -> Path:
    return max((p for p in runs.iterdir() if (p / "metrics.json").is_file()), key=lambda p: p.stat().st_mtime)


def write_docs(times: dict[str, dict]) -> list[Path]:
    """Write each `<!-- time:NAME -->` span of `DOCS` from `times`; the files changed."""
    changed = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")

        def replace(match: re.Match) -> str:
            name = match["name"]
            if name not in times:
                raise SystemExit(f"{path.relative_to(REPO)}: time:{name} is not measured (one of {sorted(times)})")
            return f"<!-- time:{name} -->{format_seconds(times[name]['seconds'])}<!-- /time -->"

        new = SPAN.sub(replace, text)
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=list(COMMANDS), help="measure these (default: all)")
    parser.add_argument("--write-docs", action="store_true", help="also write the docs' time spans")
    parser.add_argument("--docs-only", action="store_true", help="write the docs from the committed JSON only")
    args = parser.parse_args()
    times = json.loads(RESULTS.read_text())["commands"] if RESULTS.is_file() else {}
    if not args.docs_only:
        status = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout
        if status.strip():
            print("note: uncommitted changes are not measured (a fresh clone of HEAD is)", file=sys.stderr)
        measured = _measure(args.only or list(COMMANDS))
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                text=True).stdout.strip()
        for name, seconds in measured.items():
            times[name] = {"what": COMMANDS[name][0], "command": COMMANDS[name][1], "seconds": seconds,
                           "commit": commit}
        RESULTS.write_text(json.dumps({
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}",
            "how": "each command once, in a fresh clone, one after another on an otherwise idle machine",
            "commands": times}, indent=2) + "\n")
        print(f"wrote {RESULTS.relative_to(REPO)}")
    if args.write_docs or args.docs_only:
        for path in write_docs(times):
            print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
