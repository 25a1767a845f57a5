"""`data.classes`: training and scoring on some of a built-in data set's classes (real Fashion-MNIST),
with an ontology that describes only those classes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import run_main
from kgnet.config import load_config
from kgnet.data.builder import build_datasets, read_arrays
from kgnet.data.cards import load_card
from kgnet.errors import ClassMappingError, ConfigError
from kgnet.kg.build import load_knowledge_graph
from kgnet.kg.class_mapping import bind_classes

FASHION = load_card("fashion_mnist").classes
#: Six of the ten classes, in an order that is not the data set's (labels follow the data set's).
SIX = ["Sneaker", "T-shirt/top", "Bag", "Trouser", "Coat", "Sandal"]
SIX_IN_ORDER = ["T-shirt/top", "Trouser", "Coat", "Sandal", "Sneaker", "Bag"]

#: An ontology of those six classes alone (Pullover, Dress, Shirt and Ankle boot are no node of
#: it), bound by label and kgnet:className; `kgnet:classIndex` gives each its Fashion-MNIST label.
SIX_CLASS_ONTOLOGY = """\
@prefix : <http://example.org/clothes#> .
@prefix kgnet: <urn:kgnet:> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .

:Item rdfs:label "item" ; rdfs:comment "Something a person wears or carries." .
:Garment rdfs:subClassOf :Item ; rdfs:label "garment" ; rdfs:comment "Clothing worn on the body." .
:Footwear rdfs:subClassOf :Item ; rdfs:label "footwear" ; rdfs:comment "Worn on the foot, with a sole." .
:Tee rdfs:subClassOf :Garment ; kgnet:className "T-shirt/top" ; kgnet:classIndex 0 ;
    rdfs:comment "A short-sleeved top: a T shape." .
:Trousers rdfs:subClassOf :Garment ; rdfs:label "trouser" ; kgnet:classIndex 1 ;
    rdfs:comment "Two long legs side by side." .
:Coat rdfs:subClassOf :Garment ; rdfs:label "coat" ; kgnet:classIndex 4 ;
    rdfs:comment "A long-sleeved outer garment with a front opening." .
:Sandal rdfs:subClassOf :Footwear ; rdfs:label "sandal" ; kgnet:classIndex 5 ;
    rdfs:comment "An open shoe of straps over a sole." .
:Sneaker rdfs:subClassOf :Footwear ; rdfs:label "sneaker" ; kgnet:classIndex 7 ;
    rdfs:comment "A low closed sports shoe with a thick sole." .
:Bag rdfs:subClassOf :Item ; rdfs:label "bag" ; kgnet:classIndex 8 ;
    rdfs:comment "A container with a handle or strap." .
"""


@pytest.fixture(scope="module")
def six_class_ontology(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("onto") / "six.ttl"
    path.write_text(SIX_CLASS_ONTOLOGY, encoding="utf-8")
    return path


def _six(*overrides: str):
    return load_config(None, (f"data.classes=[{', '.join(SIX)}]", *overrides))


# ------------------------------------------------------------------------------------ data


def test_only_the_chosen_classes_remain_relabelled_in_the_data_sets_order() -> None:
    config = _six("data.samples_per_class=7", "data.test_per_class=20")
    bundle = build_datasets(config.data, seed=0, augment=False)
    assert bundle.class_names == SIX_IN_ORDER and bundle.num_classes == 6
    assert bundle.dataset_classes == FASHION and bundle.dataset_labels == [0, 1, 4, 5, 7, 8]
    card = load_card("fashion_mnist")
    assert bundle.wnids == [card.wnids[FASHION.index(name)] for name in SIX_IN_ORDER]
    assert np.bincount(bundle.train.labels.numpy()).tolist() == [7] * 6
    assert np.bincount(bundle.test.labels.numpy()).tolist() == [20] * 6
    assert sorted(set(bundle.val.labels.tolist())) == list(range(6))
    assert bundle.seen_classes == list(range(6)) and bundle.unseen_classes == []
    assert "6 of 10 classes" in bundle.summary()
    # each image is one of its class's: label 4 here holds Fashion-MNIST's Sneakers (its label 7)
    arrays, _ = read_arrays("fashion_mnist")
    for split, images in ((bundle.train, arrays.train), (bundle.test, arrays.test)):
        for label, image in zip(split.labels.tolist(), split.images.numpy()):
            of_class = images.images[images.labels == bundle.dataset_labels[label]]
            assert (of_class == image[0]).all(axis=(1, 2)).any()


def test_held_out_and_novel_classes_work_inside_the_subset() -> None:
    bundle = build_datasets(_six("data.held_out_classes=[Bag]", "data.novel_classes=[Coat]",
                                 "data.samples_per_class=4").data, seed=0, augment=False)
    assert bundle.unseen_classes == [5] and bundle.novel_classes == [2]
    assert np.bincount(bundle.train.labels.numpy(), minlength=6).tolist() == [4, 4, 1, 4, 4, 0]
    assert 5 not in bundle.val.labels.tolist() and 5 in bundle.test.labels.tolist()
    assert "6 of 10 classes, 1 held out, 1 novel" in bundle.summary()


@pytest.mark.parametrize("overrides, message", [
    (["data.classes=[Sneakers, Bag, Cot]"],
     r"^data\.classes: unknown class 'Sneakers' \(did you mean 'Sneaker'\?\); 'Cot' \(did you mean 'Coat'\?\)\. "
     r"Classes: 'T-shirt/top', 'Trouser'"),
    (["data.classes=[Bag]"], r"^data\.classes names 1 class: a classifier needs at least 2"),
    (["data.classes=[]"], r"^data\.classes names 0 classes"),
    (["data.classes=[Bag, Coat]", "data.held_out_classes=[Sandal]"],
     r"^data\.held_out_classes names 'Sandal', which data\.classes leaves out"),
    (["data.classes=[Bag, Coat]", "data.novel_classes=[Shirt]"],
     r"^data\.novel_classes names 'Shirt', which data\.classes leaves out"),
])
def test_a_wrong_class_list_is_one_config_error(overrides, message) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        build_datasets(load_config(None, overrides).data)
    assert "\n" not in str(caught.value)


def test_a_class_named_twice_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"data\.classes lists 'Bag' twice; name each once"):
        load_config(None, ["data.classes=[Bag, Coat, Bag]"])
    config = load_config(None, ["data.classes=[Bag, Coat]"])
    config.data.classes = ["Bag", "Coat", "Bag"]  # set in code, past the config file's check
    with pytest.raises(ConfigError, match=r"data\.classes lists 'Bag' twice; name each once"):
        build_datasets(config.data)


def test_an_image_folder_takes_class_or_folder_names(tmp_path: Path) -> None:
    """ImageNet wnid folders get ImageNet's class names; either names a class."""
    from PIL import Image

    folders = {"n01440764": "tench, Tinca tinca", "n01443537": "goldfish, Carassius auratus",
               "n01484850": "great white shark, white shark, man-eater, man-eating shark, Carcharodon carcharias"}
    for split, count in (("train", 3), ("val", 2)):
        for i, wnid in enumerate(folders):
            (tmp_path / split / wnid).mkdir(parents=True)
            for j in range(count):
                Image.new("RGB", (12, 12), (40 * i, 10 * j, 0)).save(tmp_path / split / wnid / f"{j}.png")
    config = load_config(None, [f"data.root={tmp_path}", "data.name=imagefolder", "data.image_size=8",
                                "data.samples_per_class=null", "data.val_fraction=0"])
    config.data.classes = ["n01484850", "tench, Tinca tinca"]
    bundle = build_datasets(config.data, seed=0, augment=False)
    assert bundle.class_names == [folders["n01440764"], folders["n01484850"]]
    assert bundle.wnids == ["n01440764", "n01484850"] and bundle.dataset_classes == list(folders.values())
    assert bundle.train.labels.tolist() == [0, 0, 0, 1, 1, 1] and bundle.test.labels.tolist() == [0, 0, 1, 1]
    assert [path.parent.name for path in bundle.test.files] == ["n01440764"] * 2 + ["n01484850"] * 2
    config.data.classes = ["tench, Tinca tinca", "n01440764"]
    with pytest.raises(ConfigError, match=r"lists 'tench, Tinca tinca' twice \(as 'n01440764' and 'tench, Tinca "
                       r"tinca'\); name each once"):
        build_datasets(config.data)


def test_an_image_folder_class_with_a_slash_binds_and_kg_check_reads_the_folder(
        six_class_ontology: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Issue 37: exported to an image folder, "T-shirt/top" could not be a folder name, and `kg
    check --dataset` took only cards. The folder `T-shirt%2Ftop` is the class T-shirt/top, and
    `kg check --dataset DIR` binds the folder's classes (a subset of them with --classes)."""
    from PIL import Image

    from kgnet.kg.__main__ import main as kg

    arrays, _ = read_arrays("fashion_mnist")
    for split, data in (("train", arrays.train), ("val", arrays.test)):
        for name in SIX_IN_ORDER:
            folder = tmp_path / "photos" / split / name.replace("/", "%2F")
            folder.mkdir(parents=True)
            for j, i in enumerate(np.flatnonzero(np.asarray(data.labels) == FASHION.index(name))[:2]):
                Image.fromarray(np.asarray(data.images[i])).save(folder / f"{j}.png")
    config = load_config(None, [f"data.root={tmp_path / 'photos'}", "data.name=imagefolder", "data.image_size=28",
                                "data.samples_per_class=null", "data.val_fraction=0"])
    assert set(build_datasets(config.data, seed=0, augment=False).class_names) == set(SIX_IN_ORDER)
    capsys.readouterr()
    assert kg(["check", str(six_class_ontology), "--dataset", str(tmp_path / "photos")]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"all 6 classes of image folder {tmp_path / 'photos'} bind to nodes of")
    assert "  T-shirt/top              -> <http://example.org/clothes#Tee>" in printed
    assert kg(["check", str(six_class_ontology), "--dataset", str(tmp_path / "photos"),
               "--classes", "T-shirt%2Ftop", "Bag"]) == 0
    assert capsys.readouterr().out.startswith("2 of the 6 classes of image folder")


# ---------------------------------------------------------------------------------- binding


def test_only_the_chosen_classes_bind_and_label_indices_are_the_data_sets(six_class_ontology: Path) -> None:
    kg = load_knowledge_graph(six_class_ontology)
    with pytest.raises(ClassMappingError, match="no node for 4 classes"):
        bind_classes(kg, FASHION)
    bound = bind_classes(kg, SIX_IN_ORDER, dataset_classes=FASHION)
    assert [kg.node_iris[i].split("#")[1] for i in bound.class_index.tolist()] == \
        ["Tee", "Trousers", "Coat", "Sandal", "Sneaker", "Bag"]
    # A predicate giving each class's label binds by the data set's label (Sneaker is 7, not its 4 here)
    by_index = bind_classes(kg, SIX_IN_ORDER, predicate="urn:kgnet:classIndex", dataset_classes=FASHION)
    assert by_index.class_index.tolist() == bound.class_index.tolist() and not by_index.warnings


def test_a_mapping_file_needs_entries_for_the_chosen_classes_only(six_class_ontology: Path, tmp_path: Path) -> None:
    kg = load_knowledge_graph(six_class_ontology)
    nodes = {"T-shirt/top": "Tee", "Trouser": "Trousers", "Coat": "Coat", "Sandal": "Sandal", "Sneaker": "Sneaker",
             "Bag": "Bag", "Dress": "Coat"}  # Dress: a class of the data set, left out of this run
    mapping = tmp_path / "map.yaml"
    mapping.write_text("".join(f"{name}: 'http://example.org/clothes#{node}'\n" for name, node in nodes.items()))
    bound = bind_classes(kg, SIX_IN_ORDER, mapping_file=mapping, dataset_classes=FASHION)
    assert len(bound.class_index) == 6 and not bound.warnings
    mapping.write_text(mapping.read_text() + "Jumper: 'http://example.org/clothes#Coat'\n")
    warned = bind_classes(kg, SIX_IN_ORDER, mapping_file=mapping, dataset_classes=FASHION).warnings
    assert len(warned) == 1 and "'Jumper' (line 8)" in warned[0] and "Dress" not in warned[0]


def test_the_kg_check_command_checks_the_chosen_classes(six_class_ontology: Path) -> None:
    args = ("kgnet.kg", "check", str(six_class_ontology), "--dataset", "fashion_mnist")
    result = run_main(*args, "--classes", *SIX)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("6 of the 10 classes of fashion_mnist bind to nodes of")
    assert result.stdout.count("-> <http://example.org/clothes#") == 6
    refused = run_main(*args, "--classes", "Sneakers", "Bag")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines() == [
        "error: --classes: unknown class 'Sneakers' (did you mean 'Sneaker'?). Classes: 'T-shirt/top', 'Trouser', "
        "'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'"]
    unbound = run_main(*args)  # all ten: four are no node of it
    assert unbound.returncode == 2 and "no node for 4 classes" in unbound.stderr


# ------------------------------------------------------------------------------- end to end


def test_a_six_class_ontology_trains_on_six_fashion_mnist_classes(six_class_ontology: Path, tmp_path: Path) -> None:
    from kgnet.release import load_release
    from kgnet.train import run

    config = _six(f"knowledge.ontology={six_class_ontology}", "data.samples_per_class=4", "data.val_fraction=0.01",
                  "data.test_per_class=5", "train.epochs=1", "train.batch_size=24", "train.min_steps=0",
                  "model.embed_dim=32", "model.output_stride=16", "train.analysis=none")
    metrics = run(config, tmp_path / "run", progress=False)
    assert list(metrics) == ["baseline", "kgnet"]
    for variant, scores in metrics.items():
        assert list(scores["per_class"]) == SIX_IN_ORDER, variant
        assert scores["test_images"] == 30 and len(scores["confusion"]) == 6
        assert scores["mistake_severity"] >= 1  # scored on the six-class ontology's hierarchy
        release = load_release(tmp_path / "run" / variant)
        assert release.class_names == SIX_IN_ORDER and release.graph.class_names == SIX_IN_ORDER
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["kgnet"]["per_class"].keys() == set(SIX)
    assert load_config(tmp_path / "run" / "config.yaml").data.classes == SIX  # as written, for the record


def test_a_class_gets_the_same_images_in_a_subset_run_as_in_a_full_one():
    """The random draws are keyed by a class's label in the whole data set, so a run on 8 classes
    and one on all 10 (the same seed) train, validate and test each shared class on the same images."""
    import dataclasses

    import numpy as np
    import torch

    from kgnet.config import Config
    from kgnet.data.builder import build_datasets

    data = dataclasses.replace(Config().data, samples_per_class=20, val_fraction=0.01, test_per_class=30)
    full = build_datasets(data, seed=3, augment=False)
    some = build_datasets(dataclasses.replace(data, classes=["Trouser", "Sneaker", "Bag"]), seed=3, augment=False)

    def images(bundle, split, name):
        dataset = getattr(bundle, split)
        label = bundle.class_names.index(name)
        batch, labels = dataset.batch(np.arange(len(dataset)))
        return batch[labels == label]

    for split in ("train", "val", "test"):
        for name in ("Trouser", "Sneaker", "Bag"):
            assert torch.equal(images(full, split, name), images(some, split, name)), (split, name)
