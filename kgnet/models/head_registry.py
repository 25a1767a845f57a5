"""The registry of heads: what each needs from a run, read from a `Config` before any model exists.

`knowledge.head` names an entry; the baseline's `plain` head is what a variant without
knowledge gets. Callers (the runner, the variants, the trainer, explanations) ask the entry
instead of testing which parts a model has:

- `graph`: the model has a graph encoder (the R-GCN over the run's graph);
- `infusion`: the visual tokens are fused with the node embeddings by cross-attention;
- `aligns`: the variant trains an alignment stage first (`train.align_epochs`);
- `hops`: how far the run's graph must reach around the classes for this head;
- `reads_text`: the graph encoder reads the node texts (they are encoded for it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from kgnet.config import Config, KnowledgeConfig


@dataclass(frozen=True)
class HeadSpec:
    """A registered head: its name, one line on it, and what it needs (see the module doc)."""

    name: str
    description: str
    graph: Callable[[KnowledgeConfig], bool]
    infusion: Callable[[KnowledgeConfig], bool]
    aligns: bool
    hops: Callable[[KnowledgeConfig], int]
    explains: str


HEADS: dict[str, HeadSpec] = {
    "plain": HeadSpec("plain", "the baseline's head: the backbone's pooling and an MLP",
                      graph=lambda k: False, infusion=lambda k: False, aligns=False, hops=lambda k: k.hops,
                      explains="gradcam"),
    "concept": HeadSpec("concept", "class scores as exact sums of ontology-concept activations "
                        "(`kgnet.models.concept_head`)",
                        graph=lambda k: k.concept_vectors != "free" or k.concept_infusion,
                        infusion=lambda k: k.concept_infusion, aligns=False,
                        hops=lambda k: max(k.hops, k.concept_hops), explains="contributions"),
    "prototype": HeadSpec("prototype", "the paper's head: (1 - w) MLP + w cosine to the class nodes, after an "
                          "alignment stage", graph=lambda k: True, infusion=lambda k: True, aligns=True,
                          hops=lambda k: k.hops, explains="attention"),
}


def head_spec(config: Config) -> HeadSpec:
    """The head a variant's config builds: `plain` when no knowledge scale is on."""
    return HEADS[config.knowledge.head] if config.knowledge.scales else HEADS["plain"]


def uses_knowledge(config: Config) -> bool:
    """Whether the variant reads the knowledge graph at all (its head is not the plain one)."""
    return head_spec(config).name != "plain"


def reads_text(config: Config) -> bool:
    """Whether the variant's graph encoder reads node text (so the run encodes it)."""
    k = config.knowledge
    return head_spec(config).graph(k) and k.text_control != "off" and bool({"category", "wide"} & set(k.scales))


def graph_hops(config: Config) -> int:
    """Hops of the variant's class graph (each variant gets its own graph, cached by its hops)."""
    return head_spec(config).hops(config.knowledge)
