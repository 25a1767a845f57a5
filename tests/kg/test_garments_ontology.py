"""kg/fashion_mnist_garments.ttl: the hand-written, non-WordNet ontology for Fashion-MNIST.

It must compile without warnings, bind all ten classes without a mapping file, turn its OWL
restrictions into typed edges with the shared parts it was written for, hold no WordNet
IRIs, and train the kgnet variant end to end.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import rdflib
import torch
from rdflib import OWL, RDF, RDFS, URIRef

from conftest import REPO, run_cli
from kgnet.data.cards import load_card
from kgnet.kg.build import build_class_graph, load_knowledge_graph
from kgnet.kg.graph import KnowledgeGraph
from kgnet.kg.vocab import KGNET

ONTOLOGY = REPO / "kg" / "fashion_mnist_garments.ttl"
G = "urn:kgnet:garments:"
SLEEVED = ["T-shirt/top", "Pullover", "Coat", "Shirt"]
SHOES = ["Sandal", "Sneaker", "Ankle boot"]


@pytest.fixture(scope="module")
def card():
    return load_card("fashion_mnist")


@pytest.fixture(scope="module")
def full() -> KnowledgeGraph:
    return load_knowledge_graph(ONTOLOGY, use_cache=False)


@pytest.fixture(scope="module")
def bound(card) -> KnowledgeGraph:
    # exactly what `python -m kgnet.train` does: the card's WordNet ids are offered first,
    # match nothing here, and binding falls through to the kgnet:className literals
    return build_class_graph(ONTOLOGY, card.classes, hops=2, wnids=card.wnids, use_cache=False)


def _node(graph: KnowledgeGraph, name: str) -> int:
    return graph.node_id(G + name)


def _class_node(graph: KnowledgeGraph, class_name: str) -> int:
    return int(graph.class_index[graph.class_names.index(class_name)])


def _targets(graph: KnowledgeGraph, source: int, relation: str) -> set[int]:
    """Nodes that `source` points to by base relation `relation` (a local name)."""
    r = graph.relation_iris.index(G + relation)
    src, dst = graph.edge_index
    return set(dst[(src == source) & (graph.edge_type == r)].tolist())


def _within(graph: KnowledgeGraph, start: int, hops: int) -> set[int]:
    """Node ids reachable from `start` in at most `hops` edges (either direction)."""
    reached = torch.zeros(graph.num_nodes, dtype=torch.bool)
    reached[start] = True
    src, dst = graph.edge_index
    for _ in range(hops):
        reached[dst[reached[src]]] = True
    return set(reached.nonzero().flatten().tolist())


def test_compiles_cleanly(full: KnowledgeGraph) -> None:
    assert full.warnings == []
    assert full.stats.get("ignored_unsupported_class_expression", 0) == 0
    # every node is one of the file's own named classes: no blank node, property or header
    assert all(iri.startswith(G) for iri in full.node_iris)
    parsed = rdflib.Graph().parse(ONTOLOGY, format="turtle")
    declared = {str(c) for c in parsed.subjects(RDF.type, OWL.Class) if isinstance(c, URIRef)}
    assert set(full.node_iris) == declared
    for prop in ("hasPart", "madeOf", "wornOn", "carriedOn"):
        assert G + prop not in full.node_iris


def test_every_class_has_label_and_visual_comment(full: KnowledgeGraph) -> None:
    parsed = rdflib.Graph().parse(ONTOLOGY, format="turtle")
    for node in parsed.subjects(RDF.type, OWL.Class):
        if isinstance(node, URIRef):
            assert parsed.value(node, RDFS.label) is not None, node
            assert len(str(parsed.value(node, RDFS.comment) or "")) > 20, node
    # the comment becomes node text, which the sentence encoder reads (scale 1)
    sleeve_text = full.node_texts[_node(full, "Sleeve")]
    assert sleeve_text.startswith("sleeve: ") and "arm" in sleeve_text
    assert full.node_labels[_node(full, "AnkleBoot")] == "ankle boot"


def test_all_ten_classes_bind_by_class_name(bound: KnowledgeGraph, card) -> None:
    assert bound.class_names == card.classes and len(card.classes) == 10
    assert len(set(bound.class_index.tolist())) == 10
    names = dict(bound.literals[str(KGNET.className)])
    for class_name, node in zip(bound.class_names, bound.class_index.tolist()):
        assert bound.node_iris[node].startswith(G)
        assert names[node] == class_name


def test_restrictions_become_typed_edges(full: KnowledgeGraph, bound: KnowledgeGraph) -> None:
    for relation in ("hasPart", "madeOf", "wornOn", "carriedOn"):
        assert relation in full.relation_names and "^" + relation in full.relation_names
        assert full.relation_counts()[relation] > 0
    assert "rdfs:subClassOf" in full.relation_names
    expected = [
        ("TShirtOrTop", "hasPart", "Sleeve"),
        ("Pullover", "madeOf", "KnitFabric"),
        ("Trouser", "wornOn", "Leg"),
        ("AnkleBoot", "wornOn", "Ankle"),
        ("Sole", "madeOf", "Rubber"),  # a restriction on a part class
        ("Footwear", "wornOn", "Foot"),  # a restriction on a superclass
        # owl:unionOf fillers: one edge per member
        ("Coat", "hasPart", "ButtonPlacket"),
        ("Coat", "hasPart", "Zipper"),
        ("Bag", "carriedOn", "Hand"),
        ("Bag", "carriedOn", "Shoulder"),
        ("Sneaker", "madeOf", "Canvas"),
        ("Sneaker", "madeOf", "Leather"),
    ]
    for source, relation, target in expected:
        assert _node(full, target) in _targets(full, _node(full, source), relation), (source, relation, target)
    # named superclasses are subClassOf edges next to the restrictions
    assert _node(full, "Topwear") in _targets_subclass(full, _node(full, "Shirt"))
    # the class-centred 2-hop graph keeps the restriction edges
    assert _node(bound, "Sleeve") in _targets(bound, _class_node(bound, "Shirt"), "hasPart")


def _targets_subclass(graph: KnowledgeGraph, source: int) -> set[int]:
    r = graph.relation_names.index("rdfs:subClassOf")
    src, dst = graph.edge_index
    return set(dst[(src == source) & (graph.edge_type == r)].tolist())


def test_shared_parts_connect_the_classes(bound: KnowledgeGraph) -> None:
    sleeve = _node(bound, "Sleeve")
    for name in SLEEVED:
        assert sleeve in _targets(bound, _class_node(bound, name), "hasPart"), name
    for name in ("Trouser", "Sandal", "Sneaker", "Bag", "Ankle boot"):
        assert sleeve not in _targets(bound, _class_node(bound, name), "hasPart"), name
    # Sleeve puts the four sleeved classes within two hops of each other
    near_tshirt = _within(bound, _class_node(bound, "T-shirt/top"), 2)
    assert {_class_node(bound, n) for n in SLEEVED} <= near_tshirt

    parts = {name: _targets(bound, _class_node(bound, name), "hasPart") for name in bound.class_names}
    shoe_parts = set.intersection(*(parts[n] for n in SHOES))
    assert {_node(bound, "Sole"), _node(bound, "Heel")} <= shoe_parts
    assert _node(bound, "Collar") in parts["Shirt"] & parts["Coat"]
    assert _node(bound, "Strap") in parts["Sandal"] & parts["Bag"]
    assert _node(bound, "Pocket") in parts["Coat"] & parts["Trouser"] & parts["Bag"]
    # parts the classes do not share keep them apart
    assert _node(bound, "Laces") in parts["Sneaker"] - parts["Sandal"]
    assert _node(bound, "Shaft") in parts["Ankle boot"] - parts["Sneaker"]


def test_taxonomy_gives_a_class_hierarchy(bound: KnowledgeGraph) -> None:
    from kgnet.metrics.hierarchy import ClassHierarchy

    height = ClassHierarchy(bound).lca_height
    index = {name: i for i, name in enumerate(bound.class_names)}
    # Pullover and Shirt meet at Topwear, Sneaker and Ankle boot at ClosedFootwear: both lower
    # than Pullover and Sneaker, which meet only at the root FashionItem
    assert height[index["Pullover"], index["Shirt"]] < height[index["Pullover"], index["Sneaker"]]
    assert height[index["Sneaker"], index["Ankle boot"]] < height[index["Sneaker"], index["Bag"]]
    ancestors = {bound.node_iris[i] for i in bound.ancestors([_class_node(bound, "Ankle boot")]).tolist()}
    assert ancestors == {G + n for n in ("AnkleBoot", "Boot", "ClosedFootwear", "Footwear", "FashionItem")}


def test_no_wordnet_in_it() -> None:
    parsed = rdflib.Graph().parse(ONTOLOGY, format="turtle")
    wnid = re.compile(r"[nvasr]\d{8}$")
    iris = {str(t) for triple in parsed for t in triple if isinstance(t, URIRef)}
    assert iris
    for iri in iris:
        assert not iri.startswith("urn:kgnet:wn30:") and "wordnet" not in iri.lower(), iri
        assert not wnid.search(iri), iri
    assert not list(parsed.triples((None, KGNET.wnid, None)))


def test_kg_check_cli_binds_it() -> None:
    result = run_cli("kgnet.kg", "check", str(ONTOLOGY), "--dataset", "fashion_mnist", "--no-cache")
    assert result.returncode == 0, result.stderr
    assert "all 10 classes of fashion_mnist bind" in result.stdout
    assert f"Ankle boot               -> <{G}AnkleBoot> 'ankle boot'" in result.stdout


def test_tiny_training_run_with_it(tmp_path: Path) -> None:
    from kgnet.train import main

    folder = tmp_path / "run"
    code = main([
        "--set", f"knowledge.ontology={ONTOLOGY}",
        "--set", "variants=[kgnet]",
        "--set", "data.samples_per_class=4",
        "--set", "data.val_fraction=0.01",
        "--set", "train.epochs=1",
        "--set", "train.min_steps=0",
        "--set", "train.analysis=none",
        "--set", "model.output_stride=16",  # the 2x2 token grid: ~2.7x faster, and the ontology is what is tested
        "--set", "data.test_per_class=20",
        "--out", str(folder),
    ])
    assert code == 0
    metrics = json.loads((folder / "metrics.json").read_text())
    assert list(metrics) == ["kgnet"]
    kgnet = metrics["kgnet"]
    assert 0 <= kgnet["top1"] <= 1 and kgnet["params"]["head"] > 0  # the concept head; no R-GCN by default
    assert len(kgnet["per_class"]) == 10
    assert kgnet["mistake_severity"] >= 1  # the mistakes are measured on the garment taxonomy
    release = json.loads((folder / "kgnet" / "model.json").read_text())
    assert release["config"]["knowledge"]["ontology"] == str(ONTOLOGY)
    assert release["graph"]["node_iris"] and all(iri.startswith(G) for iri in release["graph"]["node_iris"])
