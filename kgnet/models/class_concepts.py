"""The class-concept matrix A [K classes x M concepts], read from the ontology's edges.

A class's concepts are the nodes its outgoing edges reach within `hops` steps: its ancestors
(rdfs:subClassOf), their parts, materials, body regions (any object property), and those
nodes' ancestors. A concept reached at distance d weighs `decay ** (d - 1)`. Only base-direction
edges are followed (class -> superclass, class -> part), never the inverses, so a class does
not pick up its siblings' parts through a shared parent. Concepts that every class has (e.g.
"entity") cannot tell classes apart and are dropped. Each row of the structure is normalised to
sum 1, and the class's own node is added with weight `self_weight` (the knowledge-free part).

The controls of issue 11 are built here so they go through exactly the same code:
- `derange_rows`: the class nodes' knowledge given to the wrong classes (same geometry).
- identity (`self_weight=1`, or `identity_concepts`): one concept per class, no knowledge.
- a shuffled graph (`kgnet.models.controls.shuffle_edges`) passed to `class_concept_matrix`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

from kgnet.kg.graph import KnowledgeGraph


@dataclass
class ClassConcepts:
    """A [K, M] non-negative weights (rows: classes in label order), the concept node ids and names.

    Column j < K is class j's own node (the identity part).
    """

    weights: Tensor
    node_ids: list[int]
    names: list[str]
    distance: Tensor  # [K, M] hops from the class to the concept (-1 where absent), for paths

    @classmethod
    def of_weights(cls, weights: Tensor) -> ClassConcepts:
        """A matrix of anonymous concepts `c0`, `c1`, ... (node j is concept j, one hop from every
        class that uses it): a head built without an ontology, as in a unit test."""
        m = weights.shape[1]
        return cls(weights, list(range(m)), [f"c{j}" for j in range(m)], torch.where(weights != 0, 1, -1))


def _base_successors(graph: KnowledgeGraph) -> dict[int, list[int]]:
    """Node -> the targets of its base-direction edges (built once per graph: with the full
    WordNet noun graph, once per class took minutes)."""
    base = graph.edge_type < graph.num_base_relations
    out: dict[int, list[int]] = {}
    for s, d in zip(*graph.edge_index[:, base].tolist()):
        out.setdefault(s, []).append(d)
    return out


def _distances(successors: dict[int, list[int]], start: int, hops: int) -> dict[int, int]:
    """BFS distances from `start` along base-direction edges, up to `hops`."""
    seen = {start: 0}
    frontier = [start]
    for step in range(1, hops + 1):
        nxt = []
        for node in frontier:
            for target in successors.get(node, ()):
                if target not in seen:
                    seen[target] = step
                    nxt.append(target)
        frontier = nxt
    return seen


def class_concept_matrix(graph: KnowledgeGraph, *, hops: int = 3, decay: float = 0.7,
                         self_weight: float = 0.5, classes: list[int] | None = None) -> ClassConcepts:
    """Build A from the graph (see the module doc).

    Args:
        graph: A class-bound graph (its `class_index` gives each class's node).
        hops: How far a concept may be from its class.
        decay: Weight factor per extra hop.
        self_weight: Weight of the class's own node; the structure shares 1 - self_weight.
        classes: Classes whose shared concepts count as "every class has it" (default all).

    Returns:
        The matrix, with the K class nodes first (identity part), then the other concepts.
    """
    k = len(graph.class_index)
    class_nodes = graph.class_index.tolist()
    successors = _base_successors(graph)
    dists = [_distances(successors, c, hops) for c in class_nodes]
    # a class node reached from another class (WordNet: jersey -> shirt) is that class's column
    others = sorted({n for d in dists for n in d} - set(class_nodes))
    rows = classes if classes is not None else list(range(k))
    everyone = {n for n in others if all(n in dists[i] for i in rows)}
    others = [n for n in others if n not in everyone]
    columns = class_nodes + others
    col = {n: j for j, n in enumerate(columns)}
    struct = torch.zeros(k, len(columns))
    dist = torch.full((k, len(columns)), -1, dtype=torch.long)
    for i, d in enumerate(dists):
        for node, hop in d.items():
            if hop == 0 or node not in col:
                continue
            struct[i, col[node]] = decay ** (hop - 1)
            dist[i, col[node]] = hop
        dist[i, i] = 0
    sums = struct.sum(1, keepdim=True)
    struct = torch.where(sums > 0, struct / sums.clamp_min(1e-12), struct)
    weights = (1 - self_weight) * struct
    weights[torch.arange(k), torch.arange(k)] += self_weight
    names = [graph.node_labels[n] for n in columns]
    return ClassConcepts(weights, columns, names, dist)


def identity_concepts(graph: KnowledgeGraph) -> ClassConcepts:
    """One concept per class and nothing else: the knowledge-free control."""
    k = len(graph.class_index)
    return ClassConcepts(torch.eye(k), graph.class_index.tolist(),
                         [graph.node_labels[n] for n in graph.class_index.tolist()],
                         torch.where(torch.eye(k, dtype=torch.bool), 0, -1))


def derangement(k: int, seed: int) -> list[int]:
    """A seeded permutation of range(k) with no fixed point."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        perm = torch.randperm(k, generator=generator).tolist()
        if all(p != i for i, p in enumerate(perm)):
            return perm


def extended_derangement(names: Sequence[str], trained: Sequence[str], seed: int) -> list[int]:
    """`derangement(len(trained), seed)` over the `trained` classes, found among `names` by name
    (as the model was trained), and for each class of `names` not trained, another class drawn at
    random (seeded): the permuted control of a model whose ontology gained classes."""
    where = {name: i for i, name in enumerate(names)}
    perm: list[int | None] = [None] * len(names)
    for i, j in enumerate(derangement(len(trained), seed)):
        perm[where[trained[i]]] = where[trained[j]]
    generator = torch.Generator().manual_seed(seed + 1)
    for i in [i for i, p in enumerate(perm) if p is None]:
        others = [j for j in range(len(names)) if j != i]
        perm[i] = others[int(torch.randint(len(others), (1,), generator=generator))]
    return perm  # type: ignore[return-value]


def derange_rows(concepts: ClassConcepts, seed: int, perm: Sequence[int] | None = None) -> ClassConcepts:
    """Class i gets class perm[i]'s structure (perm: a seeded derangement unless given); its own
    (identity) column stays its own."""
    k = concepts.weights.shape[0]
    perm = derangement(k, seed) if perm is None else list(perm)
    w = concepts.weights.clone()
    self_w = torch.diagonal(w).clone()
    w[torch.arange(k), torch.arange(k)] = 0
    moved = w[perm].clone()
    # a structure entry on another class's column (WordNet: jersey -> shirt) moves with its row
    moved[torch.arange(k), torch.arange(k)] += self_w
    return ClassConcepts(moved, concepts.node_ids, concepts.names, concepts.distance[perm])
