"""Calibrated stacking for generalized zero-shot: the seen-unseen curve, AUSUC, the constant
chosen on validation by a pseudo-unseen calibration model (never on the test split), and the
constant's use by `python -m kgnet.predict` (`python -m kgnet.evaluate` scores with it as
training did: tests/test_evaluate.py; what scoring does with it: tests/test_scoring.py)."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import TINY_HELD_OUT
from kgnet.metrics.classification import (area_under_seen_unseen_curve, best_gamma, generalized_zero_shot,
                                          seen_offset, seen_unseen_curve)

# Classes 0 and 1 seen, 2 unseen. d = best seen logit - best unseen logit: 2, 0.5, 1, 3.
LOGITS = torch.tensor([[3.0, 0.0, 1.0],   # class 0: right among the seen, d = 2
                       [0.0, 2.0, 1.5],   # class 1: right among the seen, d = 0.5
                       [2.0, 0.0, 1.0],   # class 2: right among the unseen, d = 1
                       [0.0, 3.0, 0.0]])  # class 2: right among the unseen, d = 3
TARGETS = torch.tensor([0, 1, 2, 2])


def test_the_seen_unseen_curve_and_its_area_on_a_hand_built_case() -> None:
    gammas, seen, unseen = seen_unseen_curve(LOGITS, TARGETS, [0, 1], [2])
    # Past each d one more image goes to its unseen class: the class-1 image (d 0.5), the first
    # class-2 image (1), the class-0 image (2), the second class-2 image (3).
    assert gammas.tolist() == [-0.5, 0.75, 1.5, 2.5, 4.0]
    assert seen.tolist() == [1.0, 0.5, 0.5, 0.0, 0.0]
    assert unseen.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0]
    # Points (unseen, seen): (0,1) (0,.5) (.5,.5) (.5,0) (1,0); the area is the .5 x .5 step.
    assert area_under_seen_unseen_curve(LOGITS, TARGETS, [0, 1], [2]) == pytest.approx(0.25)
    # The harmonic mean is 0.5 only between d = 1 and d = 2; every other constant gives 0.
    gamma = best_gamma(LOGITS, TARGETS, [0, 1], [2])
    assert gamma == 1.5
    assert generalized_zero_shot(seen_offset(LOGITS, [0, 1], gamma), TARGETS, [0, 1], [2]) == {
        "gzsl_seen": 0.5, "gzsl_unseen": 0.5, "gzsl_harmonic": 0.5}
    assert generalized_zero_shot(LOGITS, TARGETS, [0, 1], [2])["gzsl_harmonic"] == 0.0  # gamma 0


def test_a_model_right_either_way_has_area_one_and_ties_keep_the_smallest_change() -> None:
    # Every image is right among the seen and among the unseen classes, and the seen images'
    # d (2, 3) lie above the unseen images' (-1, 0.5): some constant gets everything right.
    logits = torch.tensor([[4.0, 0.0, 2.0, 0.0], [0.0, 4.0, 1.0, 0.0], [1.0, 0.0, 2.0, 0.0], [0.0, 1.0, 0.0, 0.5]])
    targets = torch.tensor([0, 1, 2, 3])
    assert area_under_seen_unseen_curve(logits, targets, [0, 1], [2, 3]) == pytest.approx(1.0)
    # H = 1 for any constant in (0.5, 2); the gap's midpoint is the one candidate there.
    assert best_gamma(logits, targets, [0, 1], [2, 3]) == 1.25
    # Seen logits 1 lower (d 1, 2 and -2, -0.5) and a class-3 image that is wrong either way at
    # d 0.5: the constants 0 and 0.75 (one per gap around 0.5) are equally good; 0 is kept.
    shifted = torch.cat([seen_offset(logits, [0, 1], 1.0), torch.tensor([[1.5, 0.0, 1.0, 0.0]])])
    assert best_gamma(shifted, torch.cat([targets, torch.tensor([3])]), [0, 1], [2, 3]) == 0.0
    with pytest.raises(ValueError, match="seen and of unseen"):
        best_gamma(logits[:2], targets[:2], [0, 1], [2, 3])


@pytest.fixture(scope="module")
def small_bundle():
    """Fashion-MNIST, 10 training images per class, Sandal and Bag held out."""
    from kgnet.config import DataConfig
    from kgnet.data.builder import build_datasets

    return build_datasets(DataConfig(samples_per_class=10, val_fraction=0.005, held_out_classes=list(TINY_HELD_OUT)),
                          seed=0, augment=False)


def _gamma(bundle, folder: Path) -> float:
    """The calibration constant of the baseline that training chooses (one epoch of 20 steps, one
    thread). Fewer steps can leave the model predicting one class for every image: then every
    constant ties at harmonic mean 0, the one closest to 0 wins, and no label moves it."""
    from kgnet.config import load_config
    from kgnet.engine.distributed import DistributedContext
    from kgnet.engine.runner import _calibration_gamma
    from kgnet.variants import VARIANTS

    config = load_config(None, ["train.epochs=1", "train.batch_size=16", "train.min_steps=20", "model.embed_dim=32",
                                "model.output_stride=16"])
    gamma, _ = _calibration_gamma(VARIANTS["baseline"], config, bundle, None, None, folder, DistributedContext(),
                                  progress=False)
    return gamma


def test_the_constant_is_chosen_on_validation_and_never_reads_the_test_labels(small_bundle, tmp_path: Path,
                                                                                  one_thread) -> None:
    from kgnet.engine.gzsl import calibration_bundle, pseudo_unseen_classes

    bundle = small_bundle
    pseudo = pseudo_unseen_classes(bundle.seen_classes, bundle.unseen_classes, seed=0)
    assert len(pseudo) == len(TINY_HELD_OUT) and set(pseudo) <= set(bundle.seen_classes)
    calibration = calibration_bundle(bundle, pseudo)
    assert not torch.isin(calibration.train.labels, torch.tensor(pseudo)).any()  # held out of training
    assert all(int((calibration.val.labels == c).sum()) == 30 for c in pseudo)  # and unseen on validation
    assert len(calibration.test) == 0

    gamma = _gamma(bundle, tmp_path / "a")
    # Every test label shuffled: a constant that read them would move.
    shuffled = bundle.test.subset(range(len(bundle.test)))
    shuffled.labels = shuffled.labels[torch.randperm(len(shuffled), generator=torch.Generator().manual_seed(0))]
    assert _gamma(dataclasses.replace(bundle, test=shuffled), tmp_path / "b") == gamma
    # The same shuffle of the validation labels does move it: the check above has the power to fail.
    val = bundle.val.subset(range(len(bundle.val)))
    val.labels = val.labels[torch.randperm(len(val), generator=torch.Generator().manual_seed(0))]
    assert _gamma(dataclasses.replace(bundle, val=val), tmp_path / "c") != gamma


def test_training_chooses_and_releases_a_constant(tiny_run) -> None:
    from kgnet.release import load_release

    metrics = json.loads((tiny_run.folder / "metrics.json").read_text())
    for variant, m in metrics.items():
        release = load_release(tiny_run.folder / variant)
        assert m["gzsl_gamma"] == release.gzsl_gamma and len(m["gzsl_pseudo_unseen"]) == 2
        assert not set(m["gzsl_pseudo_unseen"]) & set(TINY_HELD_OUT)
        for key in ("gzsl_calibrated_seen", "gzsl_calibrated_unseen", "gzsl_calibrated_harmonic", "gzsl_ausuc"):
            assert 0 <= m[key] <= 1, key
        assert (tiny_run.folder / variant / "calibration" / "log.csv").is_file()


def _release_copy(tiny_run, tmp_path: Path, gamma) -> Path:
    folder = tmp_path / "run" / "kgnet"
    folder.mkdir(parents=True)
    for name in ("model.safetensors", "model.json"):
        shutil.copy(tiny_run.folder / "kgnet" / name, folder / name)
    meta = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps({**meta, "gzsl_gamma": gamma}))
    return folder


def test_predict_chooses_with_the_release_constant(tiny_run, tmp_path: Path, capsys) -> None:
    from kgnet.data.builder import read_arrays
    from kgnet.data.preprocess import read_image
    from kgnet.predict import main as predict_main
    from kgnet.release import load_release

    release = load_release(tiny_run.folder / "kgnet")
    arrays, _ = read_arrays("fashion_mnist")
    image = tmp_path / "item.png"
    Image.fromarray(arrays.test.images[0]).save(image)  # an Ankle boot: a seen class
    with torch.no_grad():
        logits = release.model(read_image(image, release.preprocessing)[None]).logits[0]
    seen, unseen = release.seen_classes, release.unseen_classes
    assert int(logits.argmax()) in seen  # uncalibrated, a seen class wins
    d = float(logits[seen].max() - logits[unseen].max())
    best_unseen = release.class_names[unseen[int(logits[unseen].argmax())]]

    folder = _release_copy(tiny_run, tmp_path, d + 0.01)  # just enough to lift the best unseen class on top
    assert predict_main(["--run", str(folder.parent), "--top-k", "2", str(image)]) == 0
    top = capsys.readouterr().out.splitlines()[1]
    assert re.match(rf"\s+{re.escape(best_unseen)}\s", top), top
    folder = _release_copy(tiny_run, tmp_path / "minus", d - 0.01)  # just too little: the seen class stays
    assert predict_main(["--run", str(folder.parent), "--top-k", "2", str(image)]) == 0
    assert release.class_names[int(logits.argmax())] in capsys.readouterr().out.splitlines()[1]


@pytest.mark.parametrize("gamma", ["high", float("nan"), True])
def test_a_damaged_constant_exits_2(tiny_run, tmp_path: Path, capsys, gamma) -> None:
    from kgnet.predict import main as predict_main

    folder = _release_copy(tiny_run, tmp_path, gamma)
    image = tmp_path / "item.png"
    Image.new("L", (28, 28)).save(image)
    assert predict_main(["--run", str(folder.parent), str(image)]) == 2
    err = capsys.readouterr().err
    assert "gzsl_gamma" in err and "model.json" in err and "Traceback" not in err
