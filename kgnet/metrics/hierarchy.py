r"""Hierarchy-aware mistake metrics: how *bad* a model's mistakes are, not only how many.

Top-1 counts confusing a beagle with a collie the same as confusing it with a car. Bertinetto
et al., "Making Better Mistakes: Leveraging Class Hierarchies with Deep Networks" (CVPR 2020,
https://arxiv.org/abs/1912.09393) score a mistake by the height of the lowest common ancestor
(LCA) of the prediction and the truth in the class hierarchy; kgnet takes that hierarchy from
the ontology (`KnowledgeGraph.hierarchy_index`: rdfs:subClassOf, rdf:type, skos:broader), so a
model that injects the ontology should make lower mistakes than its baseline.

The paper's hierarchy is a tree whose leaves are the classes, with

.. math::
    d(i, j) = \operatorname{height}(\operatorname{LCA}(i, j)), \qquad
    \operatorname{height}(\text{leaf}) = 0.

Ontologies are not such trees, so `ClassHierarchy` extends the definition (and reduces to it on
a tree whose leaves are the classes):

- height(v) = the length of the longest path from v down to a class below it (classes with no
  class below them have height 0);
- multiple inheritance (WordNet has it): the LCA of two classes is the common ancestor (or
  ancestors) of *minimal height*, so d(i, j) = min over common ancestors a of height(a);
- no common ancestor: d(i, j) = the height of a virtual root above every root, i.e. the
  largest height in the hierarchy + 1;
- d(i, i) = 0 (a correct prediction is no mistake).
"""

from __future__ import annotations

from typing import Sequence

import networkx as nx
import numpy as np
import torch
from torch import Tensor

from kgnet.kg.graph import KnowledgeGraph


class ClassHierarchy:
    r"""The class hierarchy of a class-bound `KnowledgeGraph`, with every pairwise LCA height.

    Nodes are the classes and all their hierarchy ancestors; edges go child -> parent.
    Definitions (see the module docstring for the paper's tree case):

    - **height(v)**: the length of the longest child -> parent path from a class up to v, i.e.
      the longest path from v down to a class descendant. Classes sit at different depths in
      ontologies; taking the longest path makes height a property of the node alone, strictly
      increasing towards the root, so "the lowest common ancestor" (the one with least height)
      is well defined and d(i, j) is symmetric. On a tree whose classes all sit at one depth (the paper's
      hierarchies) it equals the paper's height.
    - **LCA(i, j)** (multiple inheritance): the common ancestors (a node counts as its own
      ancestor) of minimal height; **lca_height[i, j]** = min over common ancestors a of
      height(a). On a tree this is exactly the paper's LCA, since common ancestors there form a
      chain whose heights increase upwards.
    - **disconnected classes** (no common ancestor): lca_height = `disconnected_height` =
      max height + 1, the height of a virtual root placed above every root.
    - **lca_height[i, i] = 0**, also for a class that has other classes below it.
    - A subclass cycle (A ⊑ B ⊑ A, i.e. A ≡ B) is treated as one node.

    Attributes:
        class_names: the graph's classes, in label order.
        class_index: [K] node id of each class in the graph.
        height: node id -> height, for every class and every ancestor of one.
        disconnected_height: the LCA height of two classes with no common ancestor.
        lca_height: [K, K] long tensor, lca_height[i, j] = d(class i, class j).
    """

    def __init__(self, graph: KnowledgeGraph) -> None:
        """Build the hierarchy and precompute `lca_height` (well under a second for K = 1000).

        Args:
            graph: a knowledge graph bound to a dataset's classes (`with_classes`, or
                `kgnet.kg.build.build_class_graph`).

        Raises:
            ValueError: if the graph has no classes bound.
        """
        if graph.class_index.numel() == 0:
            raise ValueError("bind the dataset's classes first (KnowledgeGraph.with_classes)")
        self.class_names = list(graph.class_names)
        self.class_index = graph.class_index.clone()
        nodes = graph.ancestors(self.class_index)
        inside = torch.zeros(graph.num_nodes, dtype=torch.bool)
        inside[nodes] = True
        child, parent = graph.hierarchy_index
        keep = inside[child] & inside[parent] & (child != parent)
        dag = nx.DiGraph()
        dag.add_nodes_from(nodes.tolist())
        dag.add_edges_from(zip(child[keep].tolist(), parent[keep].tolist()))
        # Condensing strongly connected components turns a subclass cycle into one node.
        condensed = nx.condensation(dag)
        component_of: dict[int, int] = condensed.graph["mapping"]
        order = list(nx.topological_sort(condensed))  # children before parents

        num_classes = len(self.class_index)
        components_height = np.zeros(len(order), dtype=np.int64)
        below = np.zeros((len(order), num_classes), dtype=bool)  # below[c, k]: class k is under c
        below[[component_of[n] for n in self.class_index.tolist()], np.arange(num_classes)] = True
        for component in order:
            for up in condensed.successors(component):
                components_height[up] = max(components_height[up], components_height[component] + 1)
                below[up] |= below[component]
        self._components = condensed
        self._component_of = component_of
        self._component_height = components_height
        self._below = below
        self.height: dict[int, int] = {n: int(components_height[c]) for n, c in component_of.items()}
        self.disconnected_height = int(components_height.max(initial=0)) + 1

        # Highest first, so each pair ends with the least height among its common ancestors.
        lca = np.full((num_classes, num_classes), self.disconnected_height, dtype=np.int64)
        for component in np.argsort(-components_height, kind="stable"):
            under = np.flatnonzero(below[component])
            lca[np.ix_(under, under)] = components_height[component]
        np.fill_diagonal(lca, 0)
        self.lca_height: Tensor = torch.from_numpy(lca)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def lowest_common_ancestors(self, i: int, j: int) -> list[int]:
        """Node ids of the LCA(s) of classes i and j: their common ancestors of least height.

        Several nodes are returned when incomparable common ancestors tie (multiple
        inheritance); none when the classes share no ancestor.

        Args:
            i: a class index.
            j: a class index.

        Returns:
            Sorted node ids of the graph the hierarchy was built from.
        """
        common = np.flatnonzero(self._below[:, i] & self._below[:, j])
        if len(common) == 0:
            return []
        least = self._component_height[common].min()
        lowest = common[self._component_height[common] == least]
        return sorted(n for c in lowest.tolist() for n in self._components.nodes[c]["members"])

    def __repr__(self) -> str:
        return (
            f"ClassHierarchy(classes={self.num_classes}, nodes={len(self.height)}, "
            f"max_height={self.disconnected_height - 1})"
        )


def _ranked_predictions(
    logits: Tensor, targets: Tensor, lca_height: Tensor, k: int, allowed: Sequence[int] | Tensor | None
) -> tuple[Tensor, Tensor]:
    """The top-k class indices per image (among `allowed` if given) and the kept targets."""
    if logits.ndim != 2 or logits.shape[1] != lca_height.shape[0]:
        raise ValueError(
            f"logits of shape {tuple(logits.shape)} do not match a {tuple(lca_height.shape)} lca_height"
        )
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    targets = torch.as_tensor(targets, dtype=torch.long)
    if allowed is None:
        return logits.topk(min(k, logits.shape[1]), dim=1).indices, targets
    candidates = torch.as_tensor(allowed, dtype=torch.long)
    rows = torch.isin(targets, candidates)
    ranked = logits[rows][:, candidates].topk(min(k, len(candidates)), dim=1).indices
    return candidates[ranked], targets[rows]


def mistake_severity(
    logits: Tensor, targets: Tensor, lca_height: Tensor, allowed: Sequence[int] | Tensor | None = None
) -> float:
    r"""Mean LCA height between the top-1 prediction and the truth, over the mistakes only.

    .. math::
        \frac{1}{|M|} \sum_{n \in M} d(\hat y_n, y_n), \qquad
        M = \{n : \hat y_n \ne y_n\}, \quad \hat y_n = \arg\max_c \text{logits}_{n,c}.

    Args:
        logits: [N, K] class scores.
        targets: [N] true class indices.
        lca_height: [K, K] from `ClassHierarchy.lca_height`.
        allowed: if given, predictions are chosen among these class indices only and images of
            other classes are left out (held-out / zero-shot evaluation); heights still come
            from the full hierarchy.

    Returns:
        The mean LCA height of the mistakes; nan when there are none.
    """
    predictions, targets = _ranked_predictions(logits, targets, lca_height, 1, allowed)
    predictions = predictions[:, 0]
    wrong = predictions != targets
    if not bool(wrong.any()):
        return float("nan")
    return lca_height[targets[wrong], predictions[wrong]].double().mean().item()


def hierarchical_distance_at_k(
    logits: Tensor,
    targets: Tensor,
    lca_height: Tensor,
    k: int,
    allowed: Sequence[int] | Tensor | None = None,
) -> float:
    r"""`hdist@k`: mean over images of the mean LCA height between the truth and each top-k class.

    .. math::
        \frac{1}{N} \sum_{n} \frac{1}{k} \sum_{c \in \text{top-}k(n)} d(c, y_n)

    A correct class in the top k counts as 0, so hdist@1 is the mistake severity times the
    error rate.

    Args:
        logits: [N, K] class scores.
        targets: [N] true class indices.
        lca_height: [K, K] from `ClassHierarchy.lca_height`.
        k: how many top predictions to average over; capped at the number of candidate classes.
        allowed: as in `mistake_severity`.

    Returns:
        The mean; nan when no image is left.
    """
    predictions, targets = _ranked_predictions(logits, targets, lca_height, k, allowed)
    if len(targets) == 0:
        return float("nan")
    return lca_height[targets[:, None], predictions].double().mean().item()


def hierarchy_metrics(
    logits: Tensor, targets: Tensor, lca_height: Tensor, allowed: Sequence[int] | Tensor | None = None
) -> dict[str, float]:
    """The numbers `metrics.json` reports: `mistake_severity`, `hdist@1`, `hdist@5`.

    Args:
        logits: [N, K] class scores.
        targets: [N] true class indices.
        lca_height: [K, K] from `ClassHierarchy.lca_height`.
        allowed: as in `mistake_severity`.
    """
    return {
        "mistake_severity": mistake_severity(logits, targets, lca_height, allowed),
        "hdist@1": hierarchical_distance_at_k(logits, targets, lca_height, 1, allowed),
        "hdist@5": hierarchical_distance_at_k(logits, targets, lca_height, 5, allowed),
    }
