"""`without_classes`: an ontology as it was before some classes were described (`kgnet.kg without`).

To measure (or try) what a trained model does with classes added to its ontology after training,
one needs the ontology *without* them: the classes' nodes and everything said about them (their
restrictions, as blank nodes), and the nodes only they referenced (a concept no remaining triple
points at, such as a part only those classes have). Everything else stays as written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import rdflib
from rdflib import BNode, Literal, URIRef

from kgnet.errors import KgnetError
from kgnet.kg.vocab import KGNET


def _blank_below(graph: rdflib.Graph, node) -> set:
    """Blank nodes reachable from `node` through blank nodes (its restrictions and their lists)."""
    found, todo = set(), [node]
    while todo:
        for obj in graph.objects(todo.pop(), None):
            if isinstance(obj, BNode) and obj not in found:
                found.add(obj)
                todo.append(obj)
    return found


def _remove(graph: rdflib.Graph, node) -> set:
    """Remove `node`'s triples, its blank nodes' and every triple pointing at it; the IRIs its blank
    nodes referenced."""
    blank = _blank_below(graph, node)
    referenced = {o for b in blank for o in graph.objects(b, None) if isinstance(o, URIRef)}
    for subject in (node, *blank):
        graph.remove((subject, None, None))
    graph.remove((None, None, node))
    return referenced


def without_classes(graph: rdflib.Graph, classes: Sequence[str], source: str | Path = "the ontology") -> rdflib.Graph:
    """`graph` (changed in place and returned) without the nodes whose `kgnet:className` is one of
    `classes`, and without the nodes only they referenced.

    Raises:
        KgnetError: A class no node (or several) declares.
    """
    nodes = []
    for name in classes:
        found = list(graph.subjects(KGNET.className, Literal(name)))
        if len(found) != 1:
            raise KgnetError(f"{source}: {len(found)} nodes declare kgnet:className {name!r}; give classes it "
                             "declares once (python -m kgnet.kg info counts them)")
        nodes += found
    referenced = set().union(*(_remove(graph, node) for node in nodes))
    for concept in referenced - set(nodes):
        if (None, None, concept) not in graph:
            _remove(graph, concept)
    return graph
