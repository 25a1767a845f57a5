"""The mistakes a user can make at kgnet's command lines: each gets one message, exit 2, and
leaves nothing behind.

Every case runs a CLI's `main(argv)` in this process and compares the folders the command
could touch (every path and every file's bytes) before and after. The released run they
start from is one tiny run on the 9-image photo folder (`photo_root`), trained once for this
module; a case that damages a release or a checkpoint damages a copy.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import photo_overrides, settings
from kgnet import evaluate, predict, train
from kgnet.explain import __main__ as explain

#: Without the training state: the copies of the run that only releases are read from.
NO_STATE = shutil.ignore_patterns("last.pt")


def tree(root: Path) -> dict[str, str | None]:
    """Every path under `root` with its bytes' digest (None for a folder)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
            for p in sorted(root.rglob("*"))}


def fails(main, argv: list[str], capsys: pytest.CaptureFixture) -> str:
    """Run a CLI's `main`, check it exits 2 with one message and no traceback, return the message."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, err
    return errors[0]


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory, photo_root: Path, one_thread) -> Path:
    """A finished run (baseline + kgnet, one epoch per stage) on the photo folder."""
    from kgnet.config import load_config

    folder = tmp_path_factory.mktemp("released") / "run"
    train.run(load_config(None, photo_overrides(photo_root)), folder, progress=False)
    return folder


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory, photo_root: Path) -> dict[str, Path]:
    """Image files a user may hand over: one over PIL's decompression-bomb limit (22 kB on disk),
    a truncated JPEG, a 16-bit greyscale PNG and the same picture as an 8-bit PNG."""
    folder = tmp_path_factory.mktemp("images")
    grey = np.asarray(Image.open(next((photo_root / "test").rglob("*.png"))).convert("L"))
    files = {name: folder / name for name in ("bomb.png", "truncated.jpg", "wide.png", "eight_bit.png")}
    side = int((2 * Image.MAX_IMAGE_PIXELS) ** 0.5) + 1
    Image.new("1", (side, side)).save(files["bomb.png"])
    Image.fromarray(grey).convert("RGB").resize((96, 96)).save(folder / "whole.jpg", quality=95)
    whole = (folder / "whole.jpg").read_bytes()
    files["truncated.jpg"].write_bytes(whole[:len(whole) // 2])
    Image.fromarray(grey.astype(np.uint16) * 257).save(files["wide.png"])
    Image.fromarray(grey).save(files["eight_bit.png"])
    assert Image.open(files["wide.png"]).mode == "I;16"
    return files


# ---------------------------------------------------------------- train: where it writes, what it trains on


@pytest.mark.parametrize("inside", [False, True], ids=["file", "inside-a-file"])
def test_train_out_is_a_file_fails_before_loading_anything(inside: bool, photo_root: Path, tmp_path: Path,
                                                          capsys, caplog) -> None:
    file = tmp_path / "notes.txt"
    file.write_text("mine\n")
    before = tree(tmp_path)
    out = file / "run" if inside else file
    message = fails(train.main, [*settings(*photo_overrides(photo_root)), "--out", out], capsys)
    expected = f"{file} is not a folder, so nothing can be created inside it" if inside else \
        f"--out {file}: is a file, not a folder"
    assert expected in message
    assert tree(tmp_path) == before
    assert not [r for r in caplog.records if r.name.startswith("kgnet.data")]  # no data was read


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a CUDA GPU")
def test_train_on_a_gpu_this_machine_lacks(photo_root: Path, tmp_path: Path, capsys) -> None:
    message = fails(train.main, [*settings(*photo_overrides(photo_root), "train.device=cuda"),
                                 "--out", tmp_path / "run"], capsys)
    assert "train.device cuda: this machine has no usable CUDA GPU; use cpu" in message
    assert tree(tmp_path) == {}


def test_train_nothing_to_train_warns(photo_root: Path, tmp_path: Path, capsys, caplog) -> None:
    """Zero epochs of both stages is legal (it releases the initial weights, e.g. a pretrained
    backbone as timm loaded it), and probably a mistake: a warning says so."""
    out = tmp_path / "run"
    code = train.main([*settings(*photo_overrides(photo_root), "train.epochs=0",
                                 "variants=[baseline]"), "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and r.name == "kgnet.train"]
    assert any(w.startswith("train.epochs=0: nothing is trained") for w in warnings)
    assert json.loads((out / "metrics.json").read_text())["baseline"]["epochs"] == 0


class Foreign:
    """An object torch pickles and `weights_only=True` refuses to unpickle."""


def _interrupted(released: Path, folder: Path, damage: str) -> Path:
    """A copy of `released` as if killed while training kgnet, whose last.pt is then damaged."""
    from kgnet.engine.scoring import metrics_json

    run = folder / "run"
    shutil.copytree(released, run, ignore=NO_STATE)
    for name in ("model.safetensors", "model.json"):
        (run / "kgnet" / name).unlink()
    metrics = json.loads((run / "metrics.json").read_text())
    del metrics["kgnet"]
    (run / "metrics.json").write_text(metrics_json(metrics))
    state = run / "kgnet" / "last.pt"
    if damage == "random":
        state.write_bytes(np.random.default_rng(0).bytes(100_000))
    elif damage == "truncated":
        whole = (released / "kgnet" / "last.pt").read_bytes()
        state.write_bytes(whole[:len(whole) // 2])
    else:
        torch.save({"model": Foreign()}, state)
    return run


@pytest.mark.parametrize("damage", ["random", "truncated", "foreign-pickle"])
def test_resume_with_a_damaged_checkpoint(damage: str, released: Path, tmp_path: Path, capsys) -> None:
    run = _interrupted(released, tmp_path, damage)
    before = tree(tmp_path)
    message = fails(train.main, ["--resume", run], capsys)
    assert f"--resume {run / 'kgnet' / 'last.pt'}:" in message
    assert "delete it to train kgnet from its first epoch" in message or damage == "foreign-pickle"
    assert "weights_only" not in message
    assert tree(tmp_path) == before


# ---------------------------------------------------------------- the commands that read a release


def _damaged_release(released: Path, folder: Path, damage: str) -> Path:
    run = folder / "run"
    shutil.copytree(released, run, ignore=NO_STATE)
    weights = run / "kgnet" / "model.safetensors"
    whole = weights.read_bytes()
    weights.write_bytes(whole[:len(whole) // 2] if damage == "truncated" else np.random.default_rng(0).bytes(4096))
    return run


def _command(name: str, run: Path, image: Path) -> tuple:
    return {"predict": (predict.main, ["--run", run, image]),
            "evaluate": (evaluate.main, ["--run", run, "--projection", "pca"]),
            "explain": (explain.main, ["--run", run, "--images", image])}[name]


@pytest.mark.parametrize("damage", ["truncated", "random"])
@pytest.mark.parametrize("command", ["predict", "evaluate", "explain"])
def test_a_damaged_release(command: str, damage: str, released: Path, images: dict[str, Path], tmp_path: Path,
                           capsys) -> None:
    run = _damaged_release(released, tmp_path, damage)
    before = tree(tmp_path)
    main, argv = _command(command, run, images["eight_bit.png"])
    message = fails(main, argv, capsys)
    assert f"{run / 'kgnet' / 'model.safetensors'}: not a readable safetensors file" in message
    assert "restore it from a copy, or train the run again" in message
    assert tree(tmp_path) == before


def test_explain_out_is_a_file(released: Path, images: dict[str, Path], tmp_path: Path, capsys) -> None:
    file = tmp_path / "gallery"
    file.write_text("mine\n")
    before, run_before = tree(tmp_path), tree(released)
    message = fails(explain.main, ["--run", released, "--images", images["eight_bit.png"], "--out", file], capsys)
    assert f"--out {file}: is a file, not a folder" in message
    assert tree(tmp_path) == before and tree(released) == run_before


# ---------------------------------------------------------------- image files


@pytest.mark.parametrize("name, problem", [("bomb.png", "too many pixels to decode safely"),
                                           ("truncated.jpg", "not a readable image")])
@pytest.mark.parametrize("command", ["predict", "explain"])
def test_an_unreadable_image(command: str, name: str, problem: str, released: Path, images: dict[str, Path],
                             capsys) -> None:
    before = tree(released)
    main, argv = _command(command, released, images[name])
    message = fails(main, argv, capsys)
    assert f"{images[name]}: {problem}" in message
    assert ("downscale the image" if name == "bomb.png" else "re-save or replace the file") in message
    assert tree(released) == before  # no explain/ folder either


def test_a_16_bit_png_is_scaled_not_clipped(released: Path, images: dict[str, Path], capsys) -> None:
    """A 16-bit greyscale PNG is predicted as the same picture saved with 8 bits (PIL alone clips
    its values at 255, which whitens it)."""
    wide, eight_bit = images["wide.png"], images["eight_bit.png"]
    assert predict.main(["--run", str(released), str(wide), str(eight_bit)]) == 0
    blocks: dict[str, list[str]] = {}
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("  "):
            blocks[header].append(line)
        else:
            header = line
            blocks[header] = []
    assert blocks[f"{wide}:"] == blocks[f"{eight_bit}:"]
    assert len(blocks[f"{wide}:"]) == 4  # three classes and the concepts


def test_image_folder_training_reads_16_bit_pngs_as_8_bit(images: dict[str, Path]) -> None:
    from kgnet.data.imagefolder import ImageFiles
    from kgnet.data.preprocess import Preprocessing

    spec = Preprocessing(in_chans=3, image_size=28, mean=(0.5,) * 3, std=(0.25,) * 3, crop_pct=0.875)
    for augment in (False, True):
        wide, eight_bit = (ImageFiles([images[n]], [0], preprocessing=spec, augment=augment, seed=3)
                           for n in ("wide.png", "eight_bit.png"))
        wide.set_epoch(1), eight_bit.set_epoch(1)
        assert torch.equal(wide[0][0], eight_bit[0][0])


@pytest.mark.parametrize("name, workers", [("truncated.jpg", 1), ("bomb.png", 0)])
def test_image_folder_training_on_an_unreadable_image(name: str, workers: int, photo_root: Path,
                                                      images: dict[str, Path], tmp_path: Path, capsys) -> None:
    """One bad training image: the message names it, with no traceback even from a DataLoader
    worker process (torch re-raises a worker's error with the worker's traceback in its text)."""
    root = tmp_path / "photos"
    shutil.copytree(photo_root, root)
    bad = next((root / "train").iterdir()) / name
    shutil.copy(images[name], bad)
    message = fails(train.main, [*settings(*photo_overrides(root), "variants=[baseline]", "train.batch_size=64",
                                           f"data.num_workers={workers}"), "--out", tmp_path / "run"], capsys)
    assert message.startswith(f"error: {bad}: ")
    assert "data.verify=true lists every unreadable file" in message
    assert not (tmp_path / "run").exists()  # no checkpoint was saved, so no folder is left
