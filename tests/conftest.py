"""Shared test set-up: every test session gets its own kgnet cache folder, and the tiny trained
runs that many test files read are trained once per session, in this process."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
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


#: `python -m` name -> the module whose `main(argv)` the command runs.
COMMAND_MODULES = {"kgnet.explain": "kgnet.explain.__main__", "kgnet.kg": "kgnet.kg.__main__"}


def run_main(command: str, *args: str) -> subprocess.CompletedProcess:
    """`python -m <command> <args>` run by its `main` in this process: its exit code, stdout and
    stderr (log lines included, as the command's own logging writes them), as `run_cli` gives
    them, without a new interpreter's seconds of imports. For a command's own checks; what
    needs a process of its own (signals, environment read at import) takes `run_cli`."""
    import importlib
    import logging

    module = importlib.import_module(COMMAND_MODULES.get(command, command))
    out, err = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(err)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = module.main(list(args))
            except SystemExit as stop:  # argparse's usage errors
                code = stop.code
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    return subprocess.CompletedProcess([command, *args], code or 0, out.getvalue(), err.getvalue())


def settings(*overrides: str) -> list[str]:
    """`--set` arguments for a CLI from `key=value` overrides."""
    return [arg for item in overrides for arg in ("--set", item)]


#: The smallest training that still learns something: 30 images per class, two epochs (the first
#: is the prototype head's alignment epoch), a small validation split (scored after every epoch).
TINY_OVERRIDES = (
    "data.samples_per_class=30",
    "data.val_fraction=0.01",
    "train.epochs=2",
    "train.batch_size=64",
    "train.min_steps=0",  # the steps the epochs give (8), not the 250 of the few-shot default
    "model.embed_dim=64",
    "model.output_stride=16",  # a 2x2 token grid trains and scores ~2.7x faster than the default 7x7 (test_models checks that)
    "train.analysis=pca",  # the end-of-run analysis, with the cheap projection
    "data.test_per_class=100",  # 1,000 test images: scoring all 10,000 was most of each evaluate's time
)
TINY = settings(*TINY_OVERRIDES)
#: Classes the tiny run holds out, so its metrics include the zero-shot and GZSL numbers.
TINY_HELD_OUT = ["Sandal", "Bag"]
#: Test images a tiny run scores (`data.test_per_class=100` of the ten classes).
TINY_TEST_IMAGES = 1_000


@dataclass
class TinyRun:
    """The shared tiny run: its folder, what `python -m kgnet.train` printed, and how many test
    images training read (counted on the data set: every read of a test image)."""

    folder: Path
    stdout: str
    test_images_read: int


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    """One tiny `python -m kgnet.train` run (baseline + kgnet, Sandal and Bag held out), shared.

    Session-scoped so every test file reuses one training; tests that write into a run folder
    should copy it first (`shutil.copytree`). It runs the CLI's `main` in this process.
    """
    from kgnet.data.in_memory import InMemoryImages
    from kgnet.train import main

    folder = tmp_path_factory.mktemp("runs") / "tiny"
    reads = []
    original = InMemoryImages.batch

    def counting(self, indices):
        if len(self) == TINY_TEST_IMAGES:  # the test split (training and validation have other sizes)
            reads.append(len(indices))
        return original(self, indices)

    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out):
        patch.setattr(InMemoryImages, "batch", counting)
        code = main([*TINY, *settings(f"data.held_out_classes=[{','.join(TINY_HELD_OUT)}]"), "--out", str(folder)])
    assert code == 0
    return TinyRun(folder, out.getvalue(), sum(reads))


#: Classes of the photo folder (real Fashion-MNIST images saved as RGB PNGs in wnid folders).
PHOTO_CLASSES = ("Trouser", "Sneaker", "Bag")


@pytest.fixture(scope="session")
def photo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An image-folder data set (train/<wnid>/*.png, test/<wnid>/*.png) of real Fashion-MNIST
    images of three classes, 8 training and 3 test images each: the wnid folders bind them to
    the shipped ontology, and a 9-image test split keeps runs on it short."""
    from PIL import Image

    from kgnet.data.builder import read_arrays

    arrays, card = read_arrays("fashion_mnist")
    root = tmp_path_factory.mktemp("photos")
    for split, data, count in (("train", arrays.train, 8), ("test", arrays.test, 3)):
        for name in PHOTO_CLASSES:
            label = card.classes.index(name)
            folder = root / split / card.wnids[label]
            folder.mkdir(parents=True)
            for j, i in enumerate(np.flatnonzero(np.asarray(data.labels) == label)[:count]):
                Image.fromarray(np.asarray(data.images[i]).squeeze()).convert("RGB").save(folder / f"{j}.png")
    return root


def photo_overrides(root: Path, backbone: str = "resnet10t") -> tuple[str, ...]:
    """A run on `photo_root`: 28 px, two epochs, the shipped ontology."""
    return (f"data.root={root}", "data.name=imagefolder", "data.image_size=28", "data.val_fraction=0.2",
            f"model.backbone={backbone}", "model.embed_dim=32",
            "train.epochs=2", "train.batch_size=8", "train.min_steps=0", "train.analysis=none",
            f"knowledge.ontology={REPO / 'kg' / 'fashion_mnist.ttl'}")


@pytest.fixture(scope="module")
def one_thread():
    """Tiny batches gain nothing from threads, and one thread is not slowed by a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
