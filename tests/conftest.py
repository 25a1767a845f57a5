"""Shared test set-up: every test session gets its own kgnet cache folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["KGNET_CACHE"] = str(tmp_path_factory.mktemp("kgnet-cache"))


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m <args>` in a fresh process, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        cwd=cwd or REPO,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


#: The smallest training that still learns something: 30 images per class, one epoch per stage.
TINY = [
    "--set", "data.samples_per_class=30",
    "--set", "train.align_epochs=1",
    "--set", "train.epochs=1",
    "--set", "train.batch_size=64",
    "--set", "model.embed_dim=64",
    "--set", "train.analysis=pca",  # the end-of-run analysis, with the cheap projection
]
#: Classes the tiny run holds out, so its metrics include the zero-shot and GZSL numbers.
TINY_HELD_OUT = ["Sandal", "Bag"]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """One tiny `python -m kgnet.train` run (baseline + kgnet, Sandal and Bag held out), shared.

    Session-scoped so every test file reuses one training; tests that write into a run folder
    should copy it first (`shutil.copytree`).
    """
    folder = tmp_path_factory.mktemp("runs") / "tiny"
    result = run_cli("kgnet.train", *TINY, "--set", f"data.held_out_classes=[{','.join(TINY_HELD_OUT)}]",
                     "--out", str(folder))
    assert result.returncode == 0, result.stderr[-3000:]
    return folder, result


@pytest.fixture(scope="module")
def one_thread():
    """Tiny batches gain nothing from threads, and one thread is not slowed by a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
