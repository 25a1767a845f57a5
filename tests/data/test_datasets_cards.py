"""The shipped dataset cards and their ontologies: class lists, curated wnids, class nodes."""

from __future__ import annotations

from pathlib import Path

import pytest
from rdflib import RDFS, Graph, Literal

from kgnet.data.cards import DatasetCard, card_names, load_card
from kgnet.errors import DataMissingError, KgnetError
from kgnet.kg.vocab import KGNET, WN

EXPECTED = {
    "fashion_mnist": 10,
    "cifar10": 10,
    "cifar100": 100,
    "imagenette": 10,
    "imagewoof": 10,
    "imagenet1k": 1000,
}

# Curated senses of ambiguous class names (see each card's notes); a change here is a decision.
CURATED = {
    "fashion_mnist": {
        "T-shirt/top": "jersey.n.03",
        "Coat": "coat.n.01",
        "Shirt": "shirt.n.01",
        "Bag": "bag.n.04",
        "Sneaker": "gym_shoe.n.01",
        "Ankle boot": "boot.n.01",
    },
    "cifar10": {"automobile": "car.n.01", "cat": "domestic_cat.n.01", "dog": "dog.n.01"},
    "cifar100": {
        "aquarium_fish": "fingerling.n.01",
        "maple_tree": "maple.n.02",
        "sweet_pepper": "sweet_pepper.n.02",
        "keyboard": "computer_keyboard.n.01",
        "ray": "ray.n.07",
        "seal": "seal.n.09",
        "plain": "plain.n.01",
        "cloud": "cloud.n.02",
        "mouse": "mouse.n.01",
        "dolphin": "dolphin.n.02",
        "girl": "female_child.n.01",
        "skunk": "skunk.n.04",
        "television": "television_receiver.n.01",
        "trout": "trout.n.02",
        "mushroom": "mushroom.n.05",
        "tank": "tank.n.01",
    },
    "imagenette": {"church": "church.n.02", "parachute": "parachute.n.01"},
}


@pytest.fixture(scope="module")
def cards() -> dict[str, DatasetCard]:
    return {name: load_card(name) for name in card_names()}


def wordnet_export(card: DatasetCard) -> Path:
    """The card's WordNet export in kg/ (Fashion-MNIST's default ontology is the garments one)."""
    return card.ontology.with_name(f"{card.name}.ttl")


@pytest.fixture(scope="module")
def ontologies(cards) -> dict[str, Graph]:
    """Each shipped WordNet export parsed once (ImageNet-1k's takes a couple of seconds)."""
    return {name: Graph().parse(wordnet_export(card), format="turtle") for name, card in cards.items()}


@pytest.fixture(scope="module")
def wn():
    from kgnet.kg.wordnet import load_wordnet

    try:
        return load_wordnet()
    except DataMissingError as err:
        pytest.skip(str(err))


def test_card_names():
    assert card_names() == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_card_shape(cards, name):
    card = cards[name]
    assert card.name == name
    assert card.num_classes == EXPECTED[name] == len(card.wnids)
    assert len(set(card.wnids)) == len(card.wnids)
    assert card.ontology.is_absolute() and card.ontology.is_file()
    assert card.ontology.parent.name == "kg"
    assert card.format in ("fashion-mnist-idx", "cifar10-python", "cifar100-python", "imagefolder")
    assert card.source and card.description and card.urls
    if name != "imagenet1k":  # ImageNet itself names two classes "crane"
        assert len(set(card.classes)) == len(card.classes)


def test_class_orders(cards):
    assert cards["fashion_mnist"].classes == [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]  # fmt: skip
    assert cards["cifar10"].classes == [
        "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
    ]  # fmt: skip
    cifar100 = cards["cifar100"].classes
    assert cifar100 == sorted(cifar100)
    assert cifar100[:3] == ["apple", "aquarium_fish", "baby"] and cifar100[-1] == "worm"
    for name in ("imagenette", "imagewoof"):
        assert cards[name].wnids == sorted(cards[name].wnids)  # ImageFolder order
    assert Path("/usr/share/datasets/fashion-mnist") in cards["fashion_mnist"].local_paths


def test_imagenet1k_matches_timm(cards):
    info = pytest.importorskip("timm").data.ImageNetInfo()
    card = cards["imagenet1k"]
    assert card.wnids == list(info.label_names())
    renamed = {"n02012849": "crane (bird)", "n03126707": "crane (machine)"}  # unique names
    assert card.classes == [renamed.get(w) or info.label_name_to_description(w) for w in card.wnids]
    subsets = set(cards["imagenette"].wnids) | set(cards["imagewoof"].wnids)
    assert subsets <= set(card.wnids)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_wnids_are_noun_synsets(cards, wn, name):
    from kgnet.kg.wordnet import synset_of

    for wnid in cards[name].wnids:
        synset = synset_of(wnid)
        assert synset.pos() == "n", wnid


def test_imagenet_names_are_wordnet_lemmas(cards, wn):
    from kgnet.kg.wordnet import synset_of

    for card in (cards["imagenet1k"],):
        for name, wnid in zip(card.classes, card.wnids):
            lemmas = ", ".join(synset_of(wnid).lemma_names()).replace("_", " ")
            assert name == lemmas or name.startswith("crane ("), wnid
    for name in ("imagenette", "imagewoof"):
        for cls, wnid in zip(cards[name].classes, cards[name].wnids):
            labels = [lemma.replace("_", " ").lower() for lemma in synset_of(wnid).lemma_names()]
            assert cls.lower() in labels, (cls, wnid)


@pytest.mark.parametrize("name", sorted(CURATED))
def test_curated_senses(cards, wn, name):
    from kgnet.kg.wordnet import synset_of

    card = cards[name]
    chosen = {cls: synset_of(wnid).name() for cls, wnid in zip(card.classes, card.wnids)}
    for cls, synset in CURATED[name].items():
        assert chosen[cls] == synset, cls
        if name != "imagenette":
            assert cls in card.notes, f"{name}/{cls} needs a note saying why"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_class_nodes_in_ontology(cards, ontologies, name):
    card, graph = cards[name], ontologies[name]
    for index, (cls, wnid) in enumerate(zip(card.classes, card.wnids)):
        node = WN[wnid]
        assert graph.value(node, KGNET.wnid) == Literal(wnid)
        assert graph.value(node, KGNET.classIndex) == Literal(index)
        assert graph.value(node, KGNET.className) == Literal(cls)
        assert graph.value(node, RDFS.label) is not None
    assert len(set(graph.subjects(KGNET.classIndex, None))) == card.num_classes
    assert WN["n00001740"] in set(graph.subjects(KGNET.wnid, None))  # entity, the root


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shipped_ontology_is_current(cards, wn, name, tmp_path):
    """The file in kg/ is exactly what the exporter makes from the card today."""
    from kgnet.kg.wordnet import export_ontology

    out = tmp_path / f"{name}.ttl"
    export_ontology(dataset=name, out=out)
    assert out.read_bytes() == wordnet_export(cards[name]).read_bytes(), (
        f"kg/{name}.ttl is stale: python -m kgnet.kg wordnet --dataset {name} -o kg/{name}.ttl"
    )


def test_unknown_card_lists_the_cards():
    with pytest.raises(KgnetError) as err:
        load_card("cifar")
    message = str(err.value)
    assert "cifar10" in message and "imagenet1k" in message and "fashion_mnist" in message


def test_card_from_a_path(tmp_path):
    (tmp_path / "mine.ttl").write_text("")
    card_file = tmp_path / "mine.yaml"
    card_file.write_text(
        "name: mine\ntitle: Mine\ndescription: two classes\nformat: imagefolder\n"
        "source: my disk\nontology: mine.ttl\n"
        "classes:\n  - {name: dog, wnid: n02084071}\n  - {name: cat, wnid: n02121808, note: house cat}\n"
    )
    card = load_card(card_file)
    assert card.classes == ["dog", "cat"] and card.wnids == ["n02084071", "n02121808"]
    assert card.ontology == (tmp_path / "mine.ttl").resolve()
    assert card.notes == {"cat": "house cat"} and card.urls == []
    assert load_card(str(card_file)) == card


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("name: x\nclases: []\n", "unknown key 'clases'.*did you mean 'classes'"),
        ("name: x\n", "missing key"),
        ("- just a list\n", "mapping"),
        ("name: [unclosed\n", r"not valid YAML \(line \d\)"),
    ],
)
def test_bad_card_files(tmp_path, body, match):
    card_file = tmp_path / "bad.yaml"
    card_file.write_text(body)
    with pytest.raises(KgnetError, match=match):
        load_card(card_file)


def test_bad_class_entries(tmp_path):
    head = "name: x\ntitle: X\ndescription: d\nformat: imagefolder\nsource: s\nontology: x.ttl\nclasses:\n"
    for classes, match in [
        ("  - {name: a, wnid: 02084071}\n", "not a noun wnid"),
        ("  - {name: a, wnid: n02084071}\n  - {name: b, wnid: n02084071}\n", "more than one class"),
        ("  - {name: a, wnid: n02084071, nots: x}\n", "did you mean 'note'"),
        ("  - a\n", "expected"),
    ]:
        card_file = tmp_path / "x.yaml"
        card_file.write_text(head + classes)
        with pytest.raises(KgnetError, match=match):
            load_card(card_file)
