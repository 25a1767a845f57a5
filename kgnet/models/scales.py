"""Which nodes, texts and edges of the graph each knowledge scale lets the model use.

The three scales (`graph_encoder.scales`) partition what the graph knows, so that switching one
off removes exactly its information:

- `category`: the text of the class nodes (labels, definitions). Off: a class node's input
  is a learned embedding only, i.e. the model knows that the classes exist, not what they are.
- `relation`: the edges. On: node embeddings come from R-GCN message passing over the nodes
  in view: with `wide` on that is the whole class-centred k-hop graph; with `wide` off it is
  the classes and their hierarchy ancestors, which then serve as relay nodes with learned
  inputs only (their text belongs to `wide`), so classes that share an ancestor can share
  information. Off: the same layers with a per-node linear map instead of the graph
  convolution; no edge is read.
- `wide`: every non-class node of the graph (superclasses, parts, materials, ...): its text
  enters its input and it is offered to the visual tokens as an attention token next to the
  class nodes. Off: the attention sees the class nodes only and no non-class text is read.

Each combination, written as the set that is on:

=============================  ==============================================================
scales                         what the model uses
=============================  ==============================================================
{} (all off)                   nothing: the baseline (backbone, mean pooling, MLP head)
{category}                     class text -> per-node layers; attention over class nodes
{relation}                     learned class + ancestor inputs -> R-GCN; attention over classes
{wide}                         learned class inputs, non-class text -> per-node layers;
                               attention over all nodes
{category, relation}           class text, learned ancestor inputs -> R-GCN over classes and
                               ancestors; attention over class nodes
{category, wide}               all text -> per-node layers; attention over all nodes
{relation, wide}               learned class inputs, non-class text -> R-GCN over the k-hop
                               graph; attention over all nodes
{category, relation, wide}     all text -> R-GCN over the k-hop graph; attention over all nodes
=============================  ==============================================================

Every node in view also has a learned embedding added to its input; prototype logits score
the class nodes' embeddings whatever the scales.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Collection

import torch
from torch import Tensor

from kgnet.config import SCALES
from kgnet.kg.graph import KnowledgeGraph
from kgnet.models.controls import drop_edges



@dataclass(frozen=True)
class KnowledgeView:
    """The part of a graph the switched-on scales use.

    Attributes:
        graph: The subgraph induced by the nodes in view, classes bound (local ids).
        node_ids: [n] the id in the full graph of each node in view (sorted).
        text_mask: [n] whether a node's text enters its input.
        token_index: [t] local ids of the nodes offered as attention tokens (sorted).
        num_relations: Relation ids (with inverses) the R-GCN passes messages along; None = no
            message passing (per-node layers; the `relation` scale is off).
    """

    graph: KnowledgeGraph
    node_ids: Tensor
    text_mask: Tensor
    token_index: Tensor
    num_relations: int | None

    @property
    def message_passing(self) -> bool:
        """Whether node embeddings come from R-GCN message passing."""
        return self.num_relations is not None


def check_scales(scales: Collection[str]) -> set[str]:
    """`scales` as a set, or ValueError naming any that are not category / relation / wide."""
    unknown = sorted(set(scales) - set(SCALES))
    if unknown:
        raise ValueError(f"unknown knowledge scales {unknown}; choose from {list(SCALES)}")
    return set(scales)


def select_view(graph: KnowledgeGraph, scales: Collection[str]) -> KnowledgeView:
    """What of `graph` (bound to the dataset's classes) the `scales` switched on use.

    Args:
        graph: Class-bound graph, typically cut to k hops around the classes.
        scales: A non-empty subset of {"category", "relation", "wide"}.

    Returns:
        The view; see the module docstring for the rules.
    """
    on = check_scales(scales)
    category, relation, wide = (scale in on for scale in SCALES)
    if not (category or relation or wide):
        raise ValueError("with no knowledge scale on there is nothing to select (the baseline)")
    if graph.class_index.numel() == 0:
        raise ValueError("bind the dataset's classes to the graph first (KnowledgeGraph.with_classes)")
    if wide:
        nodes = torch.arange(graph.num_nodes)
    elif relation:
        nodes = graph.ancestors(graph.class_index)
    else:
        nodes = torch.unique(graph.class_index)  # sorted
    view = graph.subgraph(nodes)
    if not relation:  # no edge is read, so none is kept
        view = drop_edges(view)
    is_class = view.class_mask()
    text_mask = (is_class & category) | (~is_class & wide)
    tokens = torch.arange(view.num_nodes) if wide else torch.sort(view.class_index).values
    return KnowledgeView(graph=view, node_ids=nodes, text_mask=text_mask, token_index=tokens,
                         num_relations=view.num_relations if relation else None)
