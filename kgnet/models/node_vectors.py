"""Where a head's per-node vectors come from: rows of the graph encoder's node embeddings, or its own.

A head that needs a vector per ontology node (the concept head's concept vectors, the prototype
head's class prototypes) asks the model's `NodeVectors` for them instead of testing whether the
model has a graph encoder:

- `GraphRows` (a model with a graph encoder): the rows of its node embeddings, so a node gets
  its vector from its text and its neighbours through the R-GCN, trained end to end;
- `OwnVectors` (a model without one): free vectors of the head's own, one per node.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import torch
from torch import Tensor, nn

from kgnet.models.scales import KnowledgeView


class NodeVectors(Protocol):
    """What a head asks for its node vectors."""

    def concept_vectors(self, node_ids: Sequence[int], dim: int) -> nn.Module:
        """A module whose `forward(nodes)` gives a vector [len(node_ids), dim] per node id."""

    def class_rows(self) -> Tensor:
        """[K] the class nodes' rows of the node embeddings."""


class FreeVectors(nn.Module):
    """A free vector per node, drawn from N(0, 1): nodes start near-orthogonal."""

    def __init__(self, node_ids: Sequence[int], dim: int) -> None:
        super().__init__()
        self.node_ids = [int(i) for i in node_ids]
        self.weight = nn.Parameter(torch.empty(len(self.node_ids), dim))
        self.reset_parameters()

    def rows(self) -> dict[str, tuple[str, list[int]]]:
        """Each row is its node's (`kgnet.models.transfer`)."""
        return {"weight": ("node", self.node_ids)}

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.copy_(torch.randn(self.weight.shape))

    def forward(self, nodes: Tensor | None = None) -> Tensor:
        """The vectors [num, dim] (`nodes` is not read)."""
        return self.weight


class NodeRows(nn.Module):
    """Rows of the node embeddings the graph encoder computes every forward."""

    def __init__(self, index: Tensor) -> None:
        super().__init__()
        self.register_buffer("index", index.clone(), persistent=False)

    def rows(self) -> dict[str, tuple[str, list[int]]]:
        return {}

    def forward(self, nodes: Tensor) -> Tensor:
        return nodes[self.index]


class OwnVectors:
    """A model without a graph encoder: each head learns its node vectors itself."""

    def concept_vectors(self, node_ids: Sequence[int], dim: int) -> nn.Module:
        return FreeVectors(node_ids, dim)

    def class_rows(self) -> Tensor:
        raise ValueError("a model without a graph encoder has no node embeddings to take class rows from")


class GraphRows:
    """A model with a graph encoder over `view`: heads read rows of its node embeddings."""

    def __init__(self, view: KnowledgeView) -> None:
        self.view = view

    def concept_vectors(self, node_ids: Sequence[int], dim: int) -> nn.Module:
        return NodeRows(local_ids(self.view.node_ids, node_ids))

    def class_rows(self) -> Tensor:
        return self.view.graph.class_index


def local_ids(view_ids: Tensor, node_ids: Tensor | Sequence[int]) -> Tensor:
    """Positions in the sorted full-graph ids of a view (`view_ids`) of full-graph `node_ids`;
    KeyError for a node the scales leave out of view."""
    node_ids = torch.as_tensor(node_ids, dtype=torch.long, device=view_ids.device)
    position = torch.searchsorted(view_ids, node_ids).clamp(max=len(view_ids) - 1)
    missing = view_ids[position] != node_ids
    if bool(missing.any()):
        raise KeyError(f"graph nodes {node_ids[missing].tolist()} are not in the model's view "
                       "(switch on the `wide` scale to score non-class nodes)")
    return position
