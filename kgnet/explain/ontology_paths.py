"""Why a concept belongs to a class: the ontology path from the class to it.

The concept head's class-concept matrix follows base-direction edges only (class -> superclass,
class -> part, material, ...; `kgnet.models.class_concepts`), so the path shown is a shortest
path along those same edges, e.g. "Sandal -subClassOf-> Footwear -hasPart-> Sole". Relations
print as their local name (the CURIE after its prefix).
"""

from __future__ import annotations

from kgnet.kg.graph import KnowledgeGraph
from kgnet.models.class_concepts import ClassConcepts


def relation_label(name: str) -> str:
    """"rdfs:subClassOf" -> "subClassOf"; ":hasPart" -> "hasPart"."""
    return name.rsplit(":", 1)[-1].rsplit("#", 1)[-1].rsplit("/", 1)[-1] or name


def _parents(graph: KnowledgeGraph, start: int) -> dict[int, tuple[int, int]]:
    """BFS from `start` along base-direction edges: node -> (previous node, relation id)."""
    base = graph.edge_type < graph.num_base_relations
    src, dst = graph.edge_index[:, base].tolist()
    relations = graph.edge_type[base].tolist()
    out: dict[int, list[tuple[int, int]]] = {}
    for s, d, r in zip(src, dst, relations):
        out.setdefault(s, []).append((d, r))
    parents: dict[int, tuple[int, int]] = {start: (-1, -1)}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for target, relation in out.get(node, ()):
                if target not in parents:
                    parents[target] = (node, relation)
                    nxt.append(target)
        frontier = nxt
    return parents


def _text(graph: KnowledgeGraph, parents: dict[int, tuple[int, int]], goal: int) -> str:
    steps = []
    node = goal
    while parents[node][0] != -1:
        previous, relation = parents[node]
        steps.append(f" -{relation_label(graph.relation_names[relation])}-> {graph.node_labels[node]}")
        node = previous
    return graph.node_labels[node] + "".join(reversed(steps))


def ontology_paths(graph: KnowledgeGraph, concepts: ClassConcepts) -> dict[tuple[int, int], str]:
    """(class, concept column) -> the path text, for every concept the ontology links to the class.

    Linked means what the matrix says (`concepts.distance` >= 0). A class's own column reads
    "(the class itself)"; a pair the matrix links but the graph does not (a control run that
    gives a class another class's concepts) is left out, as is every unlinked pair.
    """
    paths = {}
    linked = (concepts.distance >= 0).tolist()
    for k, class_node in enumerate(graph.class_index.tolist()):
        parents = _parents(graph, class_node)
        for j, node in enumerate(concepts.node_ids):
            if not linked[k][j]:
                continue
            if node == class_node:
                paths[(k, j)] = "(the class itself)"
            elif node in parents:
                paths[(k, j)] = _text(graph, parents, node)
    return paths
