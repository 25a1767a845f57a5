"""Starting from a trained run (`model.init_from`) and from a local pretrained file
(`model.pretrained_file`), issue 34: what fits is loaded, what cannot fit is one line, exit 2."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from conftest import TINY, TINY_HELD_OUT, run_main, settings
from kgnet.engine.scoring import predict
from kgnet.metrics.classification import restricted_top1
from kgnet.models.backbone import Backbone
from kgnet.release import load_release


#: A tiny run that learns (about 60% among 8 classes): the kgnet variant alone, 60 steps, Sandal
#: and Bag held out, scored on 50 test images per class.
LEARNS = (*TINY, *settings("variants=[kgnet]", "train.min_steps=60", "train.gzsl_calibration=none",
                           "data.test_per_class=50"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from kgnet.train import main

    folder = tmp_path_factory.mktemp("warm") / "base"
    assert main([*LEARNS, *settings(f"data.held_out_classes=[{','.join(TINY_HELD_OUT)}]"), "--out", str(folder)]) == 0
    return folder


def _base_top1(folder) -> float:
    """Top-1 of the run's kgnet among the classes the base run trained on, on their test images."""
    from kgnet.config import load_config
    from kgnet.data.builder import build_datasets

    release = load_release(folder / "kgnet")
    config = load_config(folder / "config.yaml")
    bundle = build_datasets(config.data, seed=config.seed, augment=False, preprocessing=release.preprocessing)
    base = [i for i, name in enumerate(release.class_names) if name not in TINY_HELD_OUT]
    out = predict(release.model, bundle.test, device=torch.device("cpu"), embeddings=False)
    keep = torch.isin(out.labels, torch.tensor(base))
    return restricted_top1(out.logits[keep], out.labels[keep], base)


@pytest.mark.slow  # three trainings that learn, ~2 min on 2 cores
def test_a_run_started_from_a_trained_one_adds_classes_and_keeps_the_base_classes(trained, tmp_path):
    """The held-out classes come back with 5 images each, 20 steps from the trained weights: the
    base classes keep their accuracy; the same 20 steps from scratch do not reach it."""
    from kgnet.train import main

    common = [*LEARNS, *settings("train.min_steps=20", "data.held_out_classes=[]",
                                 f"data.novel_classes=[{','.join(TINY_HELD_OUT)}]", "data.novel_samples_per_class=5")]
    assert main([*common, *settings(f"model.init_from={trained}"), "--out", str(tmp_path / "ft")]) == 0
    assert main([*common, "--out", str(tmp_path / "scratch")]) == 0
    before, after, scratch = _base_top1(trained), _base_top1(tmp_path / "ft"), _base_top1(tmp_path / "scratch")
    assert before > 0.4, before  # the base run learnt something to keep
    assert after >= before - 0.03, (before, after)
    assert scratch < before - 0.1, (before, scratch)


def test_init_from_a_run_of_another_backbone_is_one_line(tiny_run, tmp_path):
    out = tmp_path / "other"
    result = run_main("kgnet.train", *TINY, *settings("variants=[kgnet]", f"model.init_from={tiny_run.folder}",
                                                     "model.backbone=resnet18"), "--out", str(out))
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "its backbone is resnet10t, this run's is resnet18" in errors[0], result.stderr
    assert not out.exists()


def test_a_frozen_backbone_keeps_the_trained_features_while_the_head_learns(tiny_run, tmp_path):
    """train.backbone_lr_scale=0 with model.init_from: the backbone's weights and batch-norm
    statistics are the trained run's, bit for bit; the head moved."""
    from kgnet.train import main

    out = tmp_path / "frozen"
    assert main([*TINY, *settings("variants=[kgnet]", f"model.init_from={tiny_run.folder}", "train.backbone_lr_scale=0",
                                  "train.gzsl_calibration=none"), "--out", str(out)]) == 0
    before, after = load_release(tiny_run.folder / "kgnet").model, load_release(out / "kgnet").model
    frozen = before.backbone.state_dict()
    assert any("running_mean" in key for key in frozen)  # batch-norm statistics are among what stays
    for key, value in after.backbone.state_dict().items():
        assert torch.equal(value, frozen[key]), key
    head_before = before.head.state_dict()
    assert any(not torch.equal(value, head_before[key]) for key, value in after.head.state_dict().items()
               if key in head_before and value.shape == head_before[key].shape)


def test_init_from_names_the_variants_a_run_has(tiny_run, tmp_path):
    result = run_main("kgnet.train", *TINY, *settings("variants=[kgnet-inductive]", f"model.init_from={tiny_run.folder}"),
                     "--out", str(tmp_path / "x"))
    assert result.returncode == 2 and "holds no release of kgnet-inductive (releases there: baseline, kgnet)" \
        in result.stderr, result.stderr[-2000:]


def test_a_local_pretrained_file_is_loaded_through_timm(tmp_path):
    import timm

    source = timm.create_model("resnet10t", pretrained=False)
    path = tmp_path / "resnet10t.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    backbone = Backbone(name="resnet10t", pretrained_file=str(path), in_chans=1, small_input=True, img_size=28)
    assert torch.equal(backbone.model.layer1[0].conv1.weight, source.layer1[0].conv1.weight)
    # one channel: timm sums the pretrained stem over RGB
    assert torch.allclose(backbone.model.conv1[0].weight, source.conv1[0].weight.sum(1, keepdim=True))


def test_a_missing_pretrained_file_is_one_line(tmp_path):
    result = run_main("kgnet.train", *TINY, *settings("variants=[baseline]", f"model.pretrained_file={tmp_path}/no.pth"),
                     "--out", str(tmp_path / "x"))
    assert result.returncode == 2 and "no.pth: no such file" in result.stderr and "Traceback" not in result.stderr


def _concepts_by_class(folder) -> dict[str, dict[str, float]]:
    """Each class's row of the trained class-concept matrix A, by concept name (the release's)."""
    head = load_release(folder).model.head
    return {name: {c: float(w) for c, w in zip(head.matrix.names, row) if w} for name, row in
            zip(load_release(folder).class_names, head.weights)}


def test_a_permuted_control_started_from_a_trained_run_keeps_what_its_classes_trained_with(tmp_path):
    """kgnet-permuted gives each class another class's concepts; started from a run without Sandal
    and Bag, with them added, the eight trained classes keep the concepts they trained with (a
    derangement drawn again over ten classes would give them others: a control that forgets)."""
    from kgnet.data.cards import load_card
    from kgnet.train import main

    eight = [c for c in load_card("fashion_mnist").classes if c not in TINY_HELD_OUT]
    quick = settings("variants=[kgnet-permuted]", "train.gzsl_calibration=none", "train.analysis=none",
                     "data.test_per_class=5")
    assert main([*TINY, *quick, *settings(f"data.classes=[{','.join(eight)}]"), "--out", str(tmp_path / "base")]) == 0
    assert main([*TINY, *quick, *settings(f"model.init_from={tmp_path / 'base'}",
                                          f"data.novel_classes=[{','.join(TINY_HELD_OUT)}]",
                                          "data.novel_samples_per_class=1"), "--out", str(tmp_path / "more")]) == 0
    before = _concepts_by_class(tmp_path / "base" / "kgnet-permuted")
    after = _concepts_by_class(tmp_path / "more" / "kgnet-permuted")
    assert set(after) == set(before) | set(TINY_HELD_OUT)
    for name in eight:  # the same concepts, with weights equal up to float rounding
        assert after[name] == pytest.approx(before[name], rel=1e-5), name
    assert all(after[name] for name in TINY_HELD_OUT)  # the added classes got concepts too


def test_a_shuffled_control_cannot_start_from_a_run_with_other_classes(tiny_run, tmp_path):
    """The shuffled control rewires the whole graph: with classes added, the trained classes would
    get other edges, so init_from refuses it in one line."""
    from kgnet.train import main

    out = tmp_path / "shuffled"
    base = tmp_path / "base"
    assert main([*TINY, *settings("variants=[kgnet-shuffled]", "train.gzsl_calibration=none", "train.analysis=none",
                                  "data.test_per_class=5", "data.classes=[T-shirt/top,Trouser,Pullover]"),
                 "--out", str(base)]) == 0
    result = run_main("kgnet.train", *TINY, *settings("variants=[kgnet-shuffled]", f"model.init_from={base}",
                                                     "data.classes=[T-shirt/top,Trouser,Pullover,Dress]"),
                      "--out", str(out))
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "draws from the whole graph" in errors[0], result.stderr
    assert "Traceback" not in result.stderr and not out.exists()
