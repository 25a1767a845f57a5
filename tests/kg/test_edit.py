"""`without_classes`: the shipped garments ontology as it was before Sandal and Bag were described."""

from __future__ import annotations

import pytest
import rdflib
from rdflib import URIRef

from conftest import REPO
from kgnet.errors import KgnetError
from kgnet.kg.edit import without_classes

GARMENTS = REPO / "kg" / "fashion_mnist_garments.ttl"
G = "urn:kgnet:garments:"


def _subjects(graph: rdflib.Graph) -> set[str]:
    return {str(s) for s in graph.subjects() if isinstance(s, URIRef)}


def test_the_classes_and_the_nodes_only_they_use_go_and_shared_ones_stay():
    full = rdflib.Graph().parse(GARMENTS)
    base = without_classes(rdflib.Graph().parse(GARMENTS), ["Sandal", "Bag"], GARMENTS)
    gone = _subjects(full) - _subjects(base)
    assert {G + "Sandal", G + "Bag", G + "Strap", G + "Buckle", G + "Handle"} <= gone
    # Sole is shared with Sneaker and Ankle boot, Heel with Ankle boot: they stay
    assert {G + "Sole", G + "Sneaker", G + "AnkleBoot", G + "Footwear"} <= _subjects(base)
    # nothing points at a removed node, and no restriction is left without its class
    assert not [t for t in base if any(str(x) in gone for x in t)]
    assert not [b for b in base.subjects() if isinstance(b, rdflib.BNode) and (None, None, b) not in base]


def test_a_class_the_ontology_does_not_declare_is_named():
    with pytest.raises(KgnetError, match="0 nodes declare kgnet:className 'Sandle'"):
        without_classes(rdflib.Graph().parse(GARMENTS), ["Sandle"], GARMENTS)
