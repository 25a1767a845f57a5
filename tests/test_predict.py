"""`python -m kgnet.predict` reads an image file exactly as training and evaluation read it, so it
gives the class `python -m kgnet.evaluate` counts for the same file."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import photo_overrides
from kgnet.predict import main as predict_main


@pytest.fixture(scope="module")
def photo_run(tmp_path_factory: pytest.TempPathFactory, photo_root: Path) -> Path:
    """baseline + kgnet (resnet10t) trained on the session's photo folder (evaluation crops 0.875)."""
    from kgnet.config import load_config
    from kgnet.train import run

    folder = tmp_path_factory.mktemp("runs") / "photos"
    run(load_config(None, photo_overrides(photo_root)), folder, progress=False)
    return folder


def _predicted(stdout: str) -> dict[str, str]:
    """image path -> the top class `kgnet.predict` printed for it (the first line under it)."""
    found, path = {}, None
    for line in stdout.splitlines():
        if not line.startswith(" "):
            path = line.rstrip(":")
        elif path is not None and path not in found:
            found[path] = re.match(r"\s+(.+?)\s+[\d.]+%$", line).group(1)
    return found


@pytest.mark.parametrize("variant", ["baseline", "kgnet"])
def test_predict_gives_the_class_evaluate_counts(photo_run: Path, tmp_path: Path, capsys, variant: str) -> None:
    from kgnet.config import load_config
    from kgnet.data.builder import build_datasets
    from kgnet.engine.scoring import predict
    from kgnet.evaluate import main as evaluate_main
    from kgnet.release import load_release

    release = load_release(photo_run / variant)
    spec = release.preprocessing
    assert spec.crop_pct == 0.875  # photos: timm's evaluation centre crop, for predict too
    config = load_config(photo_run / "config.yaml")
    test = build_datasets(config.data, seed=config.seed, augment=False, preprocessing=spec).test

    # what evaluation predicts for each test file (its own data path and inference)
    expected = predict(release.model, test, device=torch.device("cpu")).logits.argmax(dim=1).tolist()
    files = [str(f) for f in test.files]
    assert predict_main(["--run", str(photo_run), "--variant", variant, "--top-k", "2", *files]) == 0
    printed = _predicted(capsys.readouterr().out)
    assert [printed[f] for f in files] == [release.class_names[c] for c in expected]

    # and what the evaluate command counts for those files is the same
    copy = tmp_path / "run"
    shutil.copytree(photo_run, copy)
    assert evaluate_main(["--run", str(copy), "--variants", variant, "--projection", "pca"]) == 0
    confusion = json.loads((copy / "metrics.json").read_text())[variant]["confusion"]
    counted = np.zeros((3, 3), dtype=int)
    for label, name in zip(test.labels.tolist(), (printed[f] for f in files)):
        counted[label, release.class_names.index(name)] += 1
    assert confusion == counted.tolist()


def test_a_file_reads_as_the_in_memory_image_it_was(tiny_run, tmp_path: Path) -> None:
    """A Fashion-MNIST test image saved as PNG is, for predict, the tensor training's test split holds."""
    from kgnet.config import load_config
    from kgnet.data.builder import build_datasets
    from kgnet.data.preprocess import read_image
    from kgnet.release import load_release

    spec = load_release(tiny_run.folder / "baseline").preprocessing
    config = load_config(tiny_run.folder / "config.yaml")
    test = build_datasets(config.data, seed=config.seed, augment=False, preprocessing=spec).test
    for i in (0, 7):
        path = tmp_path / f"{i}.png"
        Image.fromarray(test.images[i, 0].numpy()).save(path)
        torch.testing.assert_close(read_image(path, spec), test[i][0], rtol=0, atol=1e-5)


def test_predict_reads_the_release_only_and_names_bad_files(tiny_run, tmp_path: Path, capsys) -> None:
    from kgnet.data.cards import load_card
    from kgnet.data.idx import read_fashion_mnist

    release = tmp_path / "release" / "kgnet"
    release.mkdir(parents=True)
    for name in ("model.safetensors", "model.json"):  # no last.pt, no config.yaml, no pickle anywhere
        shutil.copy(tiny_run.folder / "kgnet" / name, release / name)
    card = load_card("fashion_mnist")
    arrays = read_fashion_mnist(card.local_paths[0], card.classes)
    image = tmp_path / "item.png"
    Image.fromarray(arrays.test.images[0]).save(image)
    assert predict_main(["--run", str(release.parent), "--top-k", "3", str(image)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{image}:" and len([ln for ln in lines if ln.strip().endswith("%")]) == 3
    percents = [float(ln.split()[-1].rstrip("%")) for ln in lines[1:4]]
    assert percents == sorted(percents, reverse=True) and lines[4].startswith("  concepts (logit points to the top class): ")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    assert predict_main(["--run", str(release.parent), str(broken)]) == 2
    assert "broken.png: not a readable image" in capsys.readouterr().err
