"""`python -m kgnet.evaluate`: calibration and embedding metrics on hand-computed cases, and the
CLI end to end on the shared tiny run (baseline + kgnet, Sandal and Bag held out)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY_HELD_OUT, TINY_TEST_IMAGES
from kgnet.kg.build import build_class_graph
from kgnet.metrics.calibration import calibration_bins, expected_calibration_error
from kgnet.metrics.embedding import embedding_metrics, silhouette, stratified_sample, superclasses

# ---------------------------------------------------------------- expected calibration error


def test_ece_hand_computed_with_15_bins() -> None:
    # 15 bins of width 1/15 = 0.0667, right-closed: (0.8667, 0.9333] is bin 13, (0.6667, 0.7333]
    # bin 10, (0.6, 0.6667] bin 9, (0.4, 0.4667] bin 6.
    probabilities = torch.tensor([
        [0.90, 0.05, 0.05],  # target 0: right, confidence 0.90 -> bin 13
        [0.88, 0.10, 0.02],  # target 1: wrong, confidence 0.88 -> bin 13
        [0.20, 0.70, 0.10],  # target 1: right, confidence 0.70 -> bin 10
        [0.62, 0.30, 0.08],  # target 0: right, confidence 0.62 -> bin 9
        [0.45, 0.30, 0.25],  # target 2: wrong, confidence 0.45 -> bin 6
    ])
    targets = torch.tensor([0, 1, 1, 0, 2])
    # bin 13: 2 images, accuracy 1/2, confidence (0.90 + 0.88) / 2 = 0.89 -> 2/5 * 0.39 = 0.156
    # bin 10: 1/5 * |1 - 0.70| = 0.060;  bin 9: 1/5 * |1 - 0.62| = 0.076;  bin 6: 1/5 * 0.45 = 0.090
    # ECE = 0.156 + 0.060 + 0.076 + 0.090 = 0.382 (without binning it would be 2.11 / 5 = 0.422)
    assert expected_calibration_error(probabilities, targets) == pytest.approx(0.382, abs=1e-6)
    bins = calibration_bins(probabilities.max(dim=1).values, probabilities.argmax(dim=1) == targets)
    assert bins.counts.tolist() == [0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 1, 0, 0, 2, 0]
    assert bins.accuracy[13].item() == pytest.approx(0.5) and bins.confidence[13].item() == pytest.approx(0.89)
    # Fewer bins merge them: with 1 bin ECE = |3/5 - mean confidence 0.71| = 0.11.
    assert expected_calibration_error(probabilities, targets, n_bins=1) == pytest.approx(0.11)


def test_ece_is_zero_when_confidence_matches_accuracy() -> None:
    # Ten images at confidence 0.7 of which seven are right, four at confidence 1.0, all right.
    probabilities = torch.tensor([[0.7, 0.3]] * 10 + [[1.0, 0.0]] * 4)
    targets = torch.tensor([0] * 7 + [1] * 3 + [0] * 4)
    assert expected_calibration_error(probabilities, targets) == pytest.approx(0.0, abs=1e-7)  # float32 0.7
    overconfident = torch.tensor([0] * 5 + [1] * 5 + [0] * 4)  # 5 of 10 right at 0.7: gap 0.2 on 10 of 14
    assert expected_calibration_error(probabilities, overconfident) == pytest.approx(0.2 * 10 / 14)
    assert np.isnan(expected_calibration_error(torch.empty(0, 3), torch.empty(0, dtype=torch.long)))


# ---------------------------------------------------------------- superclasses and silhouettes

PREFIXES = """\
@prefix ex: <http://example.org/> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
"""
# dog and cat under animal; tabby is a cat and a pet (goldfish is a pet too); robodog is a dog
# and a toy; car is a vehicle and a machine (one class under each); rock has no parent.
ZOO = PREFIXES + """
ex:animal rdfs:label "animal" .
ex:dog rdfs:subClassOf ex:animal ; rdfs:label "dog" .
ex:cat rdfs:subClassOf ex:animal ; rdfs:label "cat" .
ex:pet rdfs:label "pet" .
ex:toy rdfs:label "toy" .
ex:vehicle rdfs:label "vehicle" .
ex:machine rdfs:label "machine" .
ex:beagle rdfs:subClassOf ex:dog ; rdfs:label "beagle" .
ex:collie rdfs:subClassOf ex:dog ; rdfs:label "collie" .
ex:robodog rdfs:subClassOf ex:dog, ex:toy ; rdfs:label "robodog" .
ex:tabby rdfs:subClassOf ex:cat, ex:pet ; rdfs:label "tabby" .
ex:goldfish rdfs:subClassOf ex:pet ; rdfs:label "goldfish" .
ex:car rdfs:subClassOf ex:vehicle, ex:machine ; rdfs:label "car" .
ex:rock rdfs:label "rock" .
"""
ZOO_CLASSES = ["beagle", "collie", "robodog", "tabby", "goldfish", "car", "rock"]


def _graph(tmp_path: Path, turtle: str, classes: list[str]):
    path = tmp_path / "ontology.ttl"
    path.write_text(turtle)
    return build_class_graph(path, classes)


def test_superclass_rule_with_multiple_inheritance(tmp_path: Path) -> None:
    supers = superclasses(_graph(tmp_path, ZOO, ZOO_CLASSES))
    assert supers.names == ["dog", "dog",
                            "dog",      # dog (3 classes under it) beats toy (1)
                            "pet",      # pet (tabby, goldfish) beats cat (tabby only)
                            "pet",
                            "machine",  # a 1-1 tie: the smaller IRI, ex:machine < ex:vehicle
                            "rock"]     # no parent: its own superclass
    assert supers.group.tolist() == [0, 0, 0, 1, 1, 2, 3]
    assert supers.of("robodog") == "dog" and supers.num_groups == 4


def test_silhouette_on_hand_computed_cases() -> None:
    # Cosine distance: 0 between equal directions, 1 between orthogonal ones.
    # Groups {x, x} and {y, y}: a = 0, b = 1 for every point -> s = (1 - 0) / 1 = 1.
    separated = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    assert silhouette(separated, [0, 0, 1, 1])[0] == pytest.approx(1.0)
    # Groups {x, y} and {x, y}: a = 1, b = (0 + 1) / 2 = 0.5 -> s = (0.5 - 1) / 1 = -0.5.
    mixed = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    assert silhouette(mixed, [0, 0, 1, 1])[0] == pytest.approx(-0.5)
    value, reason = silhouette(separated, [0, 0, 0, 0])
    assert value is None and "one group" in reason


def test_superclass_silhouette_rewards_grouping_siblings(tmp_path: Path) -> None:
    supers = superclasses(_graph(tmp_path, ZOO, ZOO_CLASSES))
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(len(ZOO_CLASSES)), 20)
    directions = np.eye(8)
    # Each class its own direction (classes separate, siblings do not gather)...
    by_class = directions[labels] + 0.05 * rng.normal(size=(len(labels), 8))
    # ...or each superclass one direction, its classes side by side along another axis.
    by_super = directions[supers.group[labels]] + 0.3 * directions[4 + labels % 4] + 0.05 * rng.normal(size=(len(labels), 8))
    flat = embedding_metrics(by_class, labels, supers)
    grouped = embedding_metrics(by_super, labels, supers)
    assert flat["class_silhouette"] > 0.8
    assert grouped["superclass_silhouette"] > 0.8 > flat["superclass_silhouette"]
    assert "superclass_silhouette_reason" not in grouped and grouped["silhouette_images"] == len(labels)


def test_superclass_silhouette_undefined_when_no_two_classes_share_a_parent(tmp_path: Path) -> None:
    turtle = PREFIXES + "".join(f'ex:{c} rdfs:subClassOf ex:{p} ; rdfs:label "{c}" .\n'
                                for c, p in (("beagle", "dog"), ("tabby", "cat"), ("car", "vehicle")))
    supers = superclasses(_graph(tmp_path, turtle, ["beagle", "tabby", "car"]))
    assert supers.names == ["dog", "cat", "vehicle"]
    labels = np.repeat(np.arange(3), 5)
    result = embedding_metrics(np.eye(3)[labels] + 0.01, labels, supers)
    assert result["superclass_silhouette"] is None
    assert "every class is its own superclass" in result["superclass_silhouette_reason"]
    assert result["class_silhouette"] > 0.9
    assert embedding_metrics(np.eye(3)[labels], labels, None)["superclass_silhouette"] is None


def test_stratified_sample_keeps_every_class_and_its_share() -> None:
    labels = np.array([0] * 900 + [1] * 90 + [2] * 10)
    index = stratified_sample(labels, 100, seed=1)
    assert np.bincount(labels[index]).tolist() == [90, 9, 1]
    assert np.array_equal(index, stratified_sample(labels, 100, seed=1)) and np.all(np.diff(index) > 0)
    assert len(stratified_sample(labels, 5000)) == 1000


# ---------------------------------------------------------------- the CLI on a tiny trained run

NEW_KEYS = ("ece", "confusion", "class_silhouette", "superclass_silhouette", "mistake_severity",
            "zero_shot_top1", "gzsl_harmonic", "gzsl_gamma", "gzsl_calibrated_harmonic", "gzsl_ausuc")
#: What evaluate computes from a release; training computed them from the model in memory.
SCORES = ("top1", "top5", "per_class", *NEW_KEYS)


def _metrics(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def _assert_png(path: Path, min_size: tuple[int, int]) -> None:
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width >= min_size[0] and image.height >= min_size[1], image.size


def _test_counts() -> list[int]:
    """Test images per class of the tiny run (`data.test_per_class` of each class)."""
    return [TINY_TEST_IMAGES // 10] * 10


def test_training_ends_with_the_evaluation(tiny_run) -> None:
    folder = tiny_run.folder
    metrics = _metrics(folder)
    for name in ("baseline", "kgnet"):
        assert all(key in metrics[name] for key in NEW_KEYS), sorted(metrics[name])
        _assert_png(folder / f"confusion_{name}.png", (600, 450))
    _assert_png(folder / "embedding_projection.png", (1000, 500))
    assert "super sil." in tiny_run.stdout and "ECE" in tiny_run.stdout


def test_evaluate_cli_scores_the_releases_as_training_scored_the_models(tiny_run, tmp_path: Path, capsys) -> None:
    from kgnet.evaluate import main as evaluate_main

    folder = tmp_path / "run"
    shutil.copytree(tiny_run.folder, folder)
    trained = _metrics(folder)  # computed by training from the models in memory
    # Back to what training alone knew without scoring, and no figures: evaluate must bring them back.
    stripped = {name: {k: v for k, v in m.items() if k not in SCORES} for name, m in trained.items()}
    (folder / "metrics.json").write_text(json.dumps(stripped))
    for png in folder.glob("*.png"):
        if png.name != "curves.png":
            png.unlink()

    assert evaluate_main(["--run", str(folder), "--projection", "pca"]) == 0
    out = capsys.readouterr().out
    metrics = _metrics(folder)
    assert list(metrics) == ["baseline", "kgnet"]
    counts = _test_counts()
    for name, m in metrics.items():
        assert all(key in m for key in NEW_KEYS), (name, sorted(m))
        assert m["train_seconds"] == trained[name]["train_seconds"]  # training's numbers are kept
        # the release, loaded from disk, scores exactly as the trained model did in memory
        for key in ("top1", "top5", "ece", "zero_shot_top1", "gzsl_harmonic", "gzsl_gamma", "gzsl_calibrated_harmonic",
                    "gzsl_ausuc", "mistake_severity"):
            assert m[key] == pytest.approx(trained[name][key], abs=1e-6), (name, key)
        assert m["confusion"] == trained[name]["confusion"] and m["per_class"] == trained[name]["per_class"]
        assert 0 <= m["ece"] <= 1 and 0 <= m["zero_shot_top1"] <= 1 and 0 <= m["gzsl_harmonic"] <= 1
        confusion = np.array(m["confusion"])
        assert confusion.shape == (10, 10) and confusion.sum(axis=1).tolist() == counts
        diagonal = (confusion.diagonal() / confusion.sum(axis=1)).tolist()
        assert diagonal == pytest.approx(list(m["per_class"].values()))
        assert m["superclass_silhouette"] is not None and -1 <= m["superclass_silhouette"] <= 1
        assert -1 <= m["class_silhouette"] <= 1 and m["silhouette_images"] == TINY_TEST_IMAGES
        _assert_png(folder / f"confusion_{name}.png", (600, 450))
    _assert_png(folder / "embedding_projection.png", (1000, 500))
    for word in ("baseline", "kgnet", "ECE", "zero-shot", "super sil.", "embedding_projection.png"):
        assert word in out, word

    # Another split nests under its name and keeps the test numbers; one variant.
    assert evaluate_main(["--run", str(folder), "--split", "val", "--variants", "kgnet", "--projection", "pca"]) == 0
    after = _metrics(folder)
    assert after["kgnet"]["top1"] == metrics["kgnet"]["top1"] and "val" not in after["baseline"]
    rows = np.array(after["kgnet"]["val"]["confusion"]).sum(axis=1)
    unseen = [list(after["kgnet"]["per_class"]).index(name) for name in TINY_HELD_OUT]  # no validation images
    assert rows[unseen].tolist() == [0, 0] and rows.sum() == after["kgnet"]["val"]["val_images"] > 0
    assert "zero_shot_top1" not in after["kgnet"]["val"]
    _assert_png(folder / "confusion_kgnet_val.png", (600, 450))
    _assert_png(folder / "embedding_projection_val.png", (500, 400))


def test_bad_input_exits_2_with_one_message(tiny_run, tmp_path: Path, capsys) -> None:
    from kgnet.evaluate import main as evaluate_main

    folder = tiny_run.folder
    assert evaluate_main(["--run", str(tmp_path / "nowhere")]) == 2
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert evaluate_main(["--run", str(tmp_path / "empty")]) == 2
    assert "no config.yaml" in capsys.readouterr().err
    assert evaluate_main(["--run", str(folder), "--variants", "kgnet-colour"]) == 2
    err = capsys.readouterr().err
    assert "kgnet-colour" in err and "trained: baseline, kgnet" in err

    moved = tmp_path / "moved"  # a run whose data is no longer where its config says
    (moved / "kgnet").mkdir(parents=True)
    config = (folder / "config.yaml").read_text()
    assert "  root: null\n" in config
    (moved / "config.yaml").write_text(config.replace("  root: null\n", f"  root: {tmp_path / 'gone'}\n", 1))
    for name in ("model.safetensors", "model.json"):
        (moved / "kgnet" / name).symlink_to(folder / "kgnet" / name)
    assert evaluate_main(["--run", str(moved)]) == 2
    assert "gone" in capsys.readouterr().err and not (moved / "metrics.json").exists()
