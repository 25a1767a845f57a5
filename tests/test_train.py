"""`python -m kgnet.train` and `kgnet.train.run` end to end on real Fashion-MNIST with tiny budgets."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO, TINY_OVERRIDES, TINY_TEST_IMAGES, photo_overrides, run_cli, settings
from kgnet.config import load_config
from kgnet.errors import KgnetError
from kgnet.models import NoGraphEncoder, NoInfusion
from kgnet.train import main, run

RUN_FILES = ["config.yaml", "metrics.json", "comparison.txt", "curves.png"]
VARIANT_FILES = ["last.pt", "model.safetensors", "model.json", "log.csv"]


def _metrics(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def _without_timing(metrics: dict) -> dict:
    return {v: {k: x for k, x in m.items() if k not in ("train_seconds", "train_images_per_second")}
            for v, m in metrics.items()}


def test_full_run_writes_every_file(tiny_run) -> None:
    folder = tiny_run.folder
    for name in RUN_FILES:
        assert (folder / name).is_file(), name
    for variant in ("baseline", "kgnet"):
        for name in VARIANT_FILES:
            assert (folder / variant / name).is_file(), (variant, name)
    assert "baseline" in tiny_run.stdout and "kgnet" in tiny_run.stdout and "top-1" in tiny_run.stdout
    log_rows = (folder / "kgnet" / "log.csv").read_text().splitlines()
    assert log_rows[0].startswith("epoch,stage,train_loss") and len(log_rows) == 3  # header + 2 epochs
    assert log_rows[1].startswith("1,2,") and log_rows[2].startswith("2,2,")  # the concept head: no alignment stage


def test_the_test_split_is_predicted_once_per_variant(tiny_run) -> None:
    # Every read of a test image during the run was counted: one pass per variant gives every
    # number and figure (a second evaluation pass would double it).
    assert tiny_run.test_images_read == 2 * TINY_TEST_IMAGES


def test_metrics_schema(tiny_run) -> None:
    metrics = _metrics(tiny_run.folder)
    assert list(metrics) == ["baseline", "kgnet"]
    for m in metrics.values():
        assert 0 <= m["top1"] <= 1 and 0 <= m["top5"] <= 1 and m["top5"] >= m["top1"]
        assert len(m["per_class"]) == 10 and all(0 <= a <= 1 for a in m["per_class"].values())
        assert m["train_seconds"] > 0 and m["train_images_per_second"] > 0 and m["epochs"] == 2
        assert m["amp"] is False and m["compile"] is False  # the training settings the numbers depend on
        assert m["params"]["total"] > 0 and m["test_images"] == TINY_TEST_IMAGES
        assert m["mistake_severity"] >= 1 and m["hdist@1"] >= 0 and m["hdist@5"] >= 0  # WordNet hierarchy
    assert metrics["kgnet"]["params"]["total"] > metrics["baseline"]["params"]["total"]
    assert metrics["kgnet"]["params"]["backbone"] == metrics["baseline"]["params"]["backbone"]


def test_release_holds_weights_graph_texts_and_preprocessing(tiny_run) -> None:
    from safetensors.torch import load_file

    from kgnet.release import load_release

    folder = tiny_run.folder
    tensors = load_file(str(folder / "kgnet" / "model.safetensors"))
    # the default kgnet is the concept head alone (free concept vectors): it reads the graph's
    # edges, not its text (tests/test_composed_model.py checks kgnet-composed's release has it)
    assert "text_features" not in tensors
    assert any(k.startswith("graph.") for k in tensors)
    assert any(k.startswith("model.") for k in tensors)
    assert "model.head.vectors.weight" in tensors and not any(k.startswith("model.graph_encoder.") for k in tensors)
    release = load_release(folder / "kgnet")
    assert release.variant.name == "kgnet" and release.variant.parts == ("concept_head",)
    assert len(release.class_names) == 10 and release.graph is not None
    assert isinstance(release.model.graph_encoder, NoGraphEncoder) and isinstance(release.model.infusion, NoInfusion)
    spec = release.preprocessing
    assert (spec.in_chans, spec.image_size, spec.crop_pct) == (1, 28, 1.0)
    assert spec.mean == pytest.approx((0.2860,)) and spec.std == pytest.approx((0.3530,))  # Fashion-MNIST's
    baseline = load_release(folder / "baseline")
    assert isinstance(baseline.model.graph_encoder, NoGraphEncoder) and "text_features" not in load_file(
        str(folder / "baseline" / "model.safetensors"))
    # the baseline reads no knowledge, but its release holds the class hierarchy its mistakes are scored on
    assert baseline.graph is not None and baseline.graph.class_names == release.graph.class_names


def test_held_out_classes_get_zero_shot_numbers(tiny_run) -> None:
    for metrics in _metrics(tiny_run.folder).values():
        assert 0 <= metrics["zero_shot_top1"] <= 1
        for key in ("gzsl_seen", "gzsl_unseen", "gzsl_harmonic"):
            assert 0 <= metrics[key] <= 1
    assert "zero-shot" in tiny_run.stdout


def test_held_out_classes_are_never_trained(tiny_run) -> None:
    """The baseline's classifier rows of Sandal and Bag got no gradient in training: AdamW's
    weight decay alone scaled them, so each is its initial row times one common factor. The rows
    of the trained classes moved away from that. The default kgnet has no per-class weights to
    train: its concept head scores every class from its fixed row of the ontology's A."""
    from kgnet.models import ConceptHead, Knowledge, create_model
    from kgnet.models.controls import Control
    from kgnet.release import load_release

    for variant in ("baseline", "kgnet"):
        release = load_release(tiny_run.folder / variant)
        unseen, seen = release.unseen_classes, release.seen_classes
        assert [release.class_names[i] for i in unseen] == ["Sandal", "Bag"]
        if variant == "kgnet":  # no MLP head: the concept head's A is a buffer, as the ontology made it
            model = release.model
            assert isinstance(model.head, ConceptHead)
            assert not any("classifier" in name for name, _ in model.named_parameters())
            assert "weights" not in dict(model.head.named_parameters())
            cfg = release.config.concept_head
            expected = Knowledge(release.graph, None, "", Control(), 0, seen).class_concepts(
                hops=cfg.hops, decay=cfg.decay, self_weight=cfg.self_weight).weights
            torch.testing.assert_close(model.head.weights, expected, rtol=0, atol=0)
            assert bool((model.head.weights[unseen].sum(1) > 0).all())  # held-out classes are scored
            continue
        # the baseline starts from the head weights a fresh build gives
        fresh = create_model(release.config, None, variant="baseline", num_classes=10, in_chans=1, image_size=28)
        trained, initial = release.model.head.classifier, fresh.head.classifier
        ratio = (trained.weight[unseen] / initial.weight[unseen]).detach()
        factor = float(ratio.flatten()[0].detach())
        assert 0.9 < factor < 1
        torch.testing.assert_close(ratio, torch.full_like(ratio, factor), rtol=1e-4, atol=0)
        torch.testing.assert_close((trained.bias[unseen] / initial.bias[unseen]).detach(), torch.full((2,), factor),
                                   rtol=1e-4, atol=0)
        assert float((trained.weight[seen] - factor * initial.weight[seen]).abs().max().detach()) > 1e-3


def test_resume_after_kill_matches_uninterrupted(photo_root: Path, tmp_path: Path) -> None:
    overrides = (*photo_overrides(photo_root), "train.epochs=3", "train.batch_size=4", "variants=[kgnet]")
    straight = tmp_path / "straight"
    run(load_config(None, overrides), straight, progress=False)
    killed = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "kgnet.train", *settings(*overrides), "--out", str(killed)],
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = killed / "kgnet" / "last.pt"
    deadline = time.time() + 300
    while not checkpoint.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)  # a real kill: no handler runs, no clean-up
    process.wait()
    from kgnet.engine.checkpoint import load_training_state

    assert load_training_state(checkpoint)["epoch"] < 3 and not (killed / "metrics.json").exists()  # mid-run
    assert main(["--resume", str(killed)]) == 0
    assert _without_timing(_metrics(killed)) == _without_timing(_metrics(straight))


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--set", "train.lrr=0.1"], "did you mean 'train.lr'"),
        (["--set", "train.epochs=two"], "train.epochs expected int"),
        (["--set", "variants=[baseline,kgnet-colour]"], "unknown 'kgnet-colour'"),
        (["--set", "variants=[kgnet-concept]"], "unknown 'kgnet-concept'"),  # the default kgnet now
        # a setting no variant of the run reads: refused before any training
        (["--set", "graph_encoder.layers=3"], "no variant of this run (baseline, kgnet) reads --set graph_encoder.layers=3"),
        (["--set", "data.name=cifar10", "--set", "data.root=/nonexistent"], "CIFAR"),
        (["--set", "data.held_out_classes=[Sandals]"], "Sandal"),
    ],
)
def test_user_errors_exit_2_and_leave_nothing(tmp_path: Path, capsys, args: list[str], expected: str) -> None:
    folder = tmp_path / "run"
    assert main([*args, "--out", str(folder)]) == 2
    assert expected in capsys.readouterr().err
    assert not folder.exists()


def test_a_user_error_from_the_command_line_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run_cli("kgnet.train", "--set", "train.lrr=0.1", "--out", str(tmp_path / "run"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")


def test_config_yaml_names_the_ontology_the_run_read(tiny_run) -> None:
    """Issue 37: config.yaml, "the resolved config", said `knowledge.ontology: null` while the log
    named the garments ontology; it names the data set's shipped one, portably, and repeats the run."""
    from kgnet.paths import resolve_ontology

    config = load_config(tiny_run.folder / "config.yaml")
    assert config.knowledge.ontology == "kgnet:fashion_mnist_garments"
    assert resolve_ontology(config.knowledge.ontology) == (REPO / "kg" / "fashion_mnist_garments.ttl").resolve()


def test_training_into_a_run_folder_points_to_resume(tiny_run, capsys) -> None:
    before = sorted(p.relative_to(tiny_run.folder) for p in tiny_run.folder.rglob("*"))
    assert main(["--out", str(tiny_run.folder)]) == 2
    assert f"continue it (a killed run) with --resume {tiny_run.folder}" in capsys.readouterr().err
    assert sorted(p.relative_to(tiny_run.folder) for p in tiny_run.folder.rglob("*")) == before


def test_a_non_empty_run_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(KgnetError, match="not empty"):
        run(load_config(None, TINY_OVERRIDES), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_unmapped_classes_in_custom_ontology(tmp_path: Path, capsys) -> None:
    ontology = tmp_path / "clothes.ttl"
    ontology.write_text("@prefix ex: <http://example.org/> .\n@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n"
                        'ex:Trouser rdfs:label "trouser" ; rdfs:subClassOf ex:Garment .\n')
    assert main(["--set", f"knowledge.ontology={ontology}", "--out", str(tmp_path / "run")]) == 2
    assert "no node for 9 classes" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    """Epoch 1 trains normally and is checkpointed; in epoch 2 the logits turn NaN (a forward
    hook stands in for a numerical blow-up). Training stops with a message naming last.pt,
    which still holds epoch 1, loadable and finite."""
    from kgnet.data.builder import build_datasets
    from kgnet.engine.checkpoint import load_training_state
    from kgnet.engine.distributed import DistributedContext
    from kgnet.engine.trainer import TrainingDiverged, train_variant
    from kgnet.models import create_model

    config = load_config(None, (*TINY_OVERRIDES, "train.epochs=2", "data.samples_per_class=5"))
    bundle = build_datasets(config.data, seed=0, augment=False)
    model = create_model(config, None, variant="baseline", num_classes=10, in_chans=1, image_size=28)
    checkpoint = tmp_path / "last.pt"
    model.head.register_forward_hook(
        lambda module, args, out: out._replace(logits=out.logits * float("nan")) if checkpoint.exists() else None)
    with pytest.raises(TrainingDiverged, match=rf"epoch 2\).*the last good checkpoint is {checkpoint}; "
                       r"train again into a new folder with a lower train.lr"):  # --resume would keep the lr
        train_variant("baseline", config, model, bundle, tmp_path, DistributedContext(), show_progress=False)
    state = load_training_state(checkpoint)
    assert state["epoch"] == 0 and len(state["history"]) == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_corrupt_image_in_image_folder_is_named(tmp_path: Path, capsys) -> None:
    from PIL import Image

    root = tmp_path / "photos"
    for split, count in (("train", 6), ("val", 2)):
        for name, colour in (("cat", (200, 40, 40)), ("dog", (40, 40, 200))):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                Image.new("RGB", (40, 30), colour).save(folder / f"{i}.png")
    (root / "train" / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    assert main(["--set", "data.name=imagefolder", "--set", f"data.root={root}", "--set", "data.verify=true",
                 "--set", "variants=[baseline]", "--out", str(tmp_path / "run")]) == 2
    assert "broken.jpg" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_budget_of_few_steps_is_named() -> None:
    from kgnet.config import TrainConfig
    from kgnet.engine.trainer import short_training_warning, step_plan

    def warning(images: int, **train) -> str | None:
        return short_training_warning(step_plan(images, TrainConfig(**train)))

    # 30 images per class of 10 classes, less validation, 3 epochs of 64.
    message = warning(270, batch_size=64, epochs=3, min_steps=0)
    assert message is not None and "only 12 optimiser steps (3 epochs x 4 batches of 64" in message
    assert "or train.epochs to 25" in message and f"(the default is {TrainConfig().min_steps})" in message
    assert warning(270, batch_size=64, epochs=3, min_steps=200) is None  # 17 passes make 204 steps
    assert warning(54_000, batch_size=256, epochs=2, min_steps=0) is None  # 420 steps
    assert warning(30, batch_size=64, epochs=0) is None  # no training: nothing to warn about
