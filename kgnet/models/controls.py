"""Control inputs for honest ablations: a graph without its structure, text without its meaning.

A gain from "knowledge" may come from extra parameters, extra attention tokens or extra
training signal rather than from what the ontology says. The controls keep the architecture,
parameter count and token count of the real model and destroy one kind of information:

- `graph_control="shuffled"`: every base edge keeps its source and relation, its target is
  drawn by a seeded permutation of the targets of that relation's edges, so each node keeps
  its in- and out-degree per relation while the wiring becomes random (self-loops and
  repeated edges may appear); inverse edges are rebuilt from the rewired base edges.
- `graph_control="empty"`: no edges; the R-GCN keeps its weights but passes no messages
  (each node sees only itself through the root weight).
- `text_control="random"`: each node's text vector is replaced by a seeded random direction
  with the same norm, so the class descriptions carry no meaning.

The controls change only what the R-GCN and the text projection read; the class hierarchy
(`hierarchy_index`, used by the metrics and by the choice of nodes in view) is untouched.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import torch
from torch import Tensor

from kgnet.kg.graph import KnowledgeGraph

GraphControl = Literal["none", "shuffled", "empty"]
TextControl = Literal["none", "random"]


def _with_base_edges(graph: KnowledgeGraph, src: Tensor, dst: Tensor, rel: Tensor) -> KnowledgeGraph:
    """`graph` with these base edges and their inverses (base first, as the compiler orders them)."""
    r = graph.num_base_relations
    edge_index = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], dim=1)
    return dataclasses.replace(graph, edge_index=edge_index, edge_type=torch.cat([rel, rel + r]))


def shuffle_edges(graph: KnowledgeGraph, *, seed: int) -> KnowledgeGraph:
    """Rewire `graph`'s edges at random, keeping every node's degree per relation.

    Args:
        graph: The graph to rewire.
        seed: Seed of the permutation; the same seed gives the same rewiring.

    Returns:
        A copy with rewired `edge_index` (base edges, then their inverses) and `edge_type`.
    """
    base = graph.edge_type < graph.num_base_relations
    src, dst = graph.edge_index[:, base].clone()
    rel = graph.edge_type[base]
    generator = torch.Generator().manual_seed(seed)
    for r in range(graph.num_base_relations):
        slots = (rel == r).nonzero().flatten()
        dst[slots] = dst[slots[torch.randperm(len(slots), generator=generator)]]
    return _with_base_edges(graph, src, dst, rel)


def drop_edges(graph: KnowledgeGraph) -> KnowledgeGraph:
    """A copy of `graph` without edges (relations keep their ids, so R-GCN weights stay)."""
    empty = torch.empty(0, dtype=torch.long)
    return _with_base_edges(graph, empty, empty, empty)


def apply_graph_control(graph: KnowledgeGraph, control: GraphControl, *, seed: int) -> KnowledgeGraph:
    """`graph` as control `control` ("none", "shuffled" or "empty") shows it to the R-GCN."""
    if control == "none":
        return graph
    if control == "shuffled":
        return shuffle_edges(graph, seed=seed)
    if control == "empty":
        return drop_edges(graph)
    raise ValueError(f"unknown graph control {control!r}")


def random_text_features(features: Tensor, *, seed: int) -> Tensor:
    """Random vectors with the same shape and the same norm per row as `features`."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(features.shape, generator=generator, dtype=torch.float32).to(features)
    return torch.nn.functional.normalize(noise, dim=-1) * features.norm(dim=-1, keepdim=True)


def apply_text_control(features: Tensor, control: TextControl, *, seed: int) -> Tensor:
    """Node text features as control `control` ("none" or "random") shows them to the model."""
    if control == "none":
        return features
    if control == "random":
        return random_text_features(features, seed=seed)
    raise ValueError(f"unknown text control {control!r}")
