"""Marker: the line `<!-- runnable -->` right before a ```bash/```sh/```console fence (README.md, docs/*.md).

Every such block is run here, so the documented commands cannot drift from the code:

- ```bash / ```sh blocks run with bash (`set -e`, so every line must succeed) and must exit 0;
- ```console blocks: each `$ ` line is a command, the lines up to the next `$ ` are what it
  must print on stdout (compared line by line, trailing spaces ignored), and it must exit 0.

Before running, backslash continuations are joined, `python` / `.venv/bin/python` as a
command word becomes this interpreter (`sys.executable`), and every `python -m kgnet.train`
line gets `TINY_BUDGET` appended as `--set` overrides (later `--set`s win, so the doc's own
budget is replaced: the test checks that the command's settings and variants are accepted and
the run completes, not what its numbers are). The blocks of one document run in document
order in one shared temporary folder holding links to the repository's `kg/` and `datasets/`,
so relative paths such as `kg/fashion_mnist_garments.ttl` and `--out runs/x` work, a block may
use what an earlier block of the same document made, and nothing is written into the
repository.

Mark only blocks that run offline on a CPU in seconds: the whole file must stay within 90 s on
2 cores. Data downloads, GPUs, `make`, and placeholders (`runs/<run>`, `[--flag]`) stay unmarked.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import REPO

MARKER = "<!-- runnable -->"
LANGUAGES = ("bash", "sh", "console")
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
#: Overrides appended to every `python -m kgnet.train` line: one optimiser step on 5 images per
#: class, 600 validation and 50 test images, a narrow head on a coarse token grid, the cheap
#: projection (a few seconds a run of two variants on 2 cores, most of it start-up).
TINY_BUDGET = (
    "data.samples_per_class=5",
    "data.val_fraction=0.01",
    "data.test_per_class=5",
    "train.epochs=1",
    "train.batch_size=64",
    "train.min_steps=0",
    "model.embed_dim=64",
    "model.output_stride=16",  # a 2x2 token grid: ~2.7x faster than 7x7 (conftest's TINY does the same)
    "train.analysis=pca",
)
#: Fewest marked blocks: the runnable docs must not silently lose their markers.
MIN_BLOCKS = 5
#: Seconds one block may take.
BLOCK_TIMEOUT = 300

PYTHON_WORD = re.compile(r"(?<![\w./-])(?:\.venv/bin/)?python3?(?=\s)")


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int  # 1-based line of the opening fence
    language: str
    text: str

    @property
    def id(self) -> str:
        return f"{self.doc.relative_to(REPO).as_posix()}:{self.line}"


def find_blocks(doc: Path) -> tuple[list[Block], list[str]]:
    """The runnable blocks of `doc` and a problem per marker not followed by a runnable fence."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    blocks, problems = [], []
    for i, line in enumerate(lines):
        if line.strip() != MARKER:
            continue
        where = f"{doc.relative_to(REPO).as_posix()}:{i + 1}"
        fence = lines[i + 1].strip() if i + 1 < len(lines) else ""
        language = fence[3:].strip()
        if not fence.startswith("```") or language not in LANGUAGES:
            problems.append(f"{where}: {MARKER} must be followed by a ```{'/```'.join(LANGUAGES)} fence")
            continue
        end = next((j for j in range(i + 2, len(lines)) if lines[j].strip() == "```"), None)
        if end is None:
            problems.append(f"{where}: the block never closes")
            continue
        blocks.append(Block(doc, i + 2, language, "\n".join(lines[i + 2:end]) + "\n"))
    return blocks, problems


def _all_blocks() -> tuple[list[Block], list[str]]:
    blocks, problems = [], []
    for doc in DOCS:
        found, wrong = find_blocks(doc)
        blocks += found
        problems += wrong
    return blocks, problems


BLOCKS, PROBLEMS = _all_blocks()


def prepare(command: str) -> str:
    """One doc command (continuations joined) as the test runs it (see the module doc)."""
    command = PYTHON_WORD.sub(lambda _: shlex.quote(sys.executable), command)
    if re.search(r"-m\s+kgnet\.train\b", command):
        code = command.partition(" #")[0]  # without a trailing comment
        command = code.rstrip() + "".join(f" --set {item}" for item in TINY_BUDGET)
    return command


def prepared_script(text: str) -> str:
    joined = re.sub(r"\\\n[ \t]*", " ", text)
    return "set -e\n" + "\n".join(prepare(line) for line in joined.splitlines()) + "\n"


def console_steps(text: str) -> list[tuple[str, str]]:
    """(command, expected stdout) per `$ ` line of a console block."""
    steps: list[tuple[str, list[str]]] = []
    lines = iter(re.sub(r"\\\n[ \t]*", " ", text).splitlines())
    for line in lines:
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line.rstrip())
        elif line.strip():
            raise ValueError(f"console block: output before the first `$ ` line: {line!r}")
    return [(command, "\n".join(out).rstrip("\n")) for command, out in steps]


@pytest.fixture(scope="module")
def doc_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, Path]:
    return {}


def _folder(doc: Path, folders: dict[Path, Path], factory: pytest.TempPathFactory) -> Path:
    if doc not in folders:
        folder = factory.mktemp(re.sub(r"\W", "-", doc.stem))
        for name in ("kg", "datasets"):
            (folder / name).symlink_to(REPO / name, target_is_directory=True)
        folders[doc] = folder
    return folders[doc]


def _bash(script: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True,
                          timeout=BLOCK_TIMEOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def test_markers_found_and_well_formed() -> None:
    assert not PROBLEMS, "\n".join(PROBLEMS)
    assert len(BLOCKS) >= MIN_BLOCKS, f"only {len(BLOCKS)} {MARKER} blocks: {[b.id for b in BLOCKS]}"


def test_prepare_substitutes_interpreter_and_budget() -> None:
    line = prepare('.venv/bin/python -m kgnet.train --set "variants=[baseline,kgnet]" --out runs/a   # a comment')
    assert line.startswith(shlex.quote(sys.executable) + " -m kgnet.train")
    assert "# a comment" not in line and line.endswith(" --set train.analysis=pca")
    assert "--set train.min_steps=0" in line
    assert prepare("python -m kgnet.kg info kg/x.ttl") == f"{shlex.quote(sys.executable)} -m kgnet.kg info kg/x.ttl"


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_doc_block_runs(block: Block, doc_folders: dict[Path, Path],
                        tmp_path_factory: pytest.TempPathFactory) -> None:
    cwd = _folder(block.doc, doc_folders, tmp_path_factory)
    if block.language == "console":
        for command, expected in console_steps(block.text):
            done = _bash(prepare(command), cwd)
            assert done.returncode == 0, f"{block.id}: `{command}` exited {done.returncode}:\n{done.stderr[-4000:]}"
            printed = "\n".join(line.rstrip() for line in done.stdout.splitlines()).rstrip("\n")
            assert printed == expected, f"{block.id}: `{command}` now prints:\n{printed}"
    else:
        done = _bash(prepared_script(block.text), cwd)
        assert done.returncode == 0, (f"{block.id} exited {done.returncode}:\n{block.text}\n"
                                      f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-4000:]}")


def test_every_config_file_in_the_docs_loads(tmp_path: Path) -> None:
    """A ```yaml block whose top keys are config sections is a config a reader copies: it loads
    (custom-ontology.md's example still said `knowledge.hops` after the key moved)."""
    import dataclasses

    import yaml

    from kgnet.config import Config, load_config

    sections = {f.name for f in dataclasses.fields(Config)}
    checked = 0
    for doc in DOCS:
        for match in re.finditer(r"```yaml\n(.*?)```", doc.read_text(encoding="utf-8"), re.S):
            data = yaml.safe_load(match[1])
            if not isinstance(data, dict) or not all(str(k).split(".")[0] in sections for k in data):
                continue
            path = tmp_path / f"{doc.stem}-{checked}.yaml"
            path.write_text(match[1], encoding="utf-8")
            load_config(path)
            checked += 1
    assert checked >= 2


def test_every_documented_time_is_the_measured_one() -> None:
    """Issue 37: documented times were far off ("13 s" took 175 s). Each `<!-- time:NAME -->`
    span says what benchmarks/doc_times.py measured (benchmarks/results/doc_times.json)."""
    import json

    from benchmarks.doc_times import DOCS as TIMED_DOCS, RESULTS, SPAN, format_seconds

    times = json.loads(RESULTS.read_text())["commands"]
    spans = [(doc, m["name"], m["text"]) for doc in TIMED_DOCS for m in SPAN.finditer(doc.read_text("utf-8"))]
    assert {name for _, name, _ in spans} >= {"setup", "demo", "test", "smoke", "help", "explain"}
    wrong = [f"{doc.name} time:{name} says {text!r}, measured {format_seconds(times[name]['seconds'])}"
             for doc, name, text in spans if name not in times or text != format_seconds(times[name]["seconds"])]
    assert not wrong, "run python benchmarks/doc_times.py --docs-only:\n" + "\n".join(wrong)
