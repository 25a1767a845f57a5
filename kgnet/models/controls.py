"""Controls for honest comparisons: the same model with one kind of knowledge destroyed.

A gain from "knowledge" may come from extra parameters, extra attention tokens or extra
training signal rather than from what the ontology says. A control keeps the architecture,
parameter count and token count of the variant it controls and destroys one kind of
information. Each is a `Control` registered in `CONTROLS` (a variant names one,
`kgnet.variants`); the parts read the knowledge through its hooks, so a control goes
through exactly the code of the real model:

- `permuted`: each class given another class's concepts (a derangement of the class-concept
  matrix's rows: same geometry, wrong meaning);
- `identity`: one concept per class and nothing else (the machinery without knowledge);
- `shuffled`: every base edge keeps its source and relation, its target is drawn by a seeded
  permutation of the targets of that relation's edges, so each node keeps its in- and
  out-degree per relation while the wiring becomes random (self-loops and repeated edges may
  appear); inverse edges are rebuilt from the rewired base edges;
- `empty`: no edges; the R-GCN keeps its weights but passes no messages (each node sees only
  itself through the root weight);
- `random_text`: each node's text vector replaced by a seeded random direction with the same
  norm, so the class descriptions carry no meaning;
- `no_text`: no node text read at all (learned node inputs alone).

What a control breaks is one kind of knowledge a part reads (`Head.knowledge`,
`GraphEncoder.knowledge`): a control of a variant none of whose parts read that kind is refused.
The class hierarchy (used by the metrics) is never touched.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, ClassVar, Iterable, Sequence

import torch
from torch import Tensor

from kgnet.kg.graph import KnowledgeGraph
from kgnet.models.class_concepts import ClassConcepts, derange_rows, extended_derangement, identity_concepts
from kgnet.models.registry import Registry

#: Every control, by name (`none` keeps the knowledge as it is).
CONTROLS = Registry("control")


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


def random_text_features(features: Tensor, *, seed: int) -> Tensor:
    """Random vectors with the same shape and the same norm per row as `features`."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(features.shape, generator=generator, dtype=torch.float32).to(features)
    return torch.nn.functional.normalize(noise, dim=-1) * features.norm(dim=-1, keepdim=True)


class Control:
    """Keeps the knowledge as it is; each registered control overrides the hooks of what it breaks."""

    name: ClassVar[str] = "none"
    #: The kind of knowledge it breaks (a part's `knowledge` names what it reads); "" = nothing.
    breaks: ClassVar[str] = ""
    #: Kinds of knowledge it cannot be applied to, with why.
    refuses: ClassVar[dict[str, str]] = {}
    #: Whether the graph encoder still reads node text under it.
    keeps_text: ClassVar[bool] = True
    #: Whether a trained model keeps what it broke when its ontology is edited (`kgnet.engine.extend`):
    #: not where its random draws depend on the whole graph (rewired edges, random texts).
    survives_edit: ClassVar[bool] = True

    def class_concepts(self, graph: KnowledgeGraph, build: Callable[[KnowledgeGraph], ClassConcepts], *,
                       seed: int, trained: Sequence[str] | None = None) -> ClassConcepts:
        """The concept head's class-concept matrix, `build` reading it from `graph`'s edges
        (`trained`: the classes a model was trained with, in its order, when `graph` is an edited
        ontology with more)."""
        return build(self.edges(graph, seed=seed))

    def edges(self, graph: KnowledgeGraph, *, seed: int) -> KnowledgeGraph:
        """The graph as a part reading its edges sees it."""
        return graph

    def text_mask(self, mask: Tensor) -> Tensor:
        """Which nodes' text the graph encoder reads."""
        return mask

    def texts(self, features: Tensor, *, seed: int) -> Tensor:
        """The encoded node texts as the graph encoder reads them."""
        return features

    def check(self, reads: Iterable[str], variant: str) -> None:
        """ValueError when no part of `variant` reads what this control breaks (it would train
        the variant again) or one reads what it cannot be applied to (`refuses`)."""
        reads = set(reads)
        for kind, why in self.refuses.items():
            if kind in reads:
                raise ValueError(f"{variant}: the {self.name} control {why}")
        if self.breaks and self.breaks not in reads:
            raise ValueError(f"{variant}: the {self.name} control breaks the {self.breaks}, which no part of it "
                             f"reads (its parts read: {', '.join(sorted(reads)) or 'no knowledge'})")


CONTROLS["none"] = Control


@CONTROLS.register("permuted")
class Permuted(Control):
    breaks = "class concepts"

    def class_concepts(self, graph, build, *, seed, trained=None):
        """A derangement of the classes; after an edit, the trained classes keep theirs and each new
        class gets another class's concepts (`extended_derangement`)."""
        perm = None if trained is None else extended_derangement(graph.class_names, trained, seed)
        return derange_rows(build(graph), seed, perm)


@CONTROLS.register("identity")
class Identity(Control):
    breaks = "class concepts"

    def class_concepts(self, graph, build, *, seed, trained=None):
        return identity_concepts(graph)


@CONTROLS.register("shuffled")
class Shuffled(Control):
    breaks = "edges"
    survives_edit = False

    def edges(self, graph, *, seed):
        return shuffle_edges(graph, seed=seed)


@CONTROLS.register("empty")
class Empty(Control):
    breaks = "edges"
    refuses = {"class concepts": "removes every edge, so a concept head links no class to any concept and scores "
                                 "every class alike (a constant model, not a control)"}

    def edges(self, graph, *, seed):
        return drop_edges(graph)


@CONTROLS.register("random_text")
class RandomText(Control):
    breaks = "text"
    survives_edit = False

    def texts(self, features, *, seed):
        return random_text_features(features, seed=seed)


@CONTROLS.register("no_text")
class NoText(Control):
    breaks = "text"
    keeps_text = False

    def text_mask(self, mask):
        return torch.zeros_like(mask)
