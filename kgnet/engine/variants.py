"""The registry of variants a run trains and compares: the baseline, kgnet, its controls and ablations.

One entry per variant: its name, what it is, its role (`model`, `control` or `ablation`), its
plot colour, and the change it makes to the run's knowledge settings. `kgnet.train`, the
benchmark suites, the report, predict and explain all read this table, so a new control is one
entry here.

Every variant shares data, augmentation, optimiser and steps; only the knowledge settings
differ. `baseline` has every knowledge scale off, which makes it exactly the plain backbone
with its pooling and MLP head. The controls go through the same code as `kgnet` and destroy
one kind of information each, so a gain over them is the knowledge's.
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass
from typing import Callable

from kgnet.config import Config, KnowledgeConfig
from kgnet.errors import ConfigError
from kgnet.models.head_registry import graph_hops, head_spec, reads_text, uses_knowledge

__all__ = ["VARIANTS", "Variant", "aligns", "check_variants", "graph_hops", "reads_text", "uses_knowledge",
           "variant_config"]

SCALES = ("category", "relation", "wide")


@dataclass(frozen=True)
class Variant:
    """A registered variant (see the module doc)."""

    name: str
    description: str
    role: str
    colour: str
    change: Callable[[KnowledgeConfig], None]
    #: For a control or an ablation: the variant it is measured against (whose knowledge it
    #: destroys or whose part it removes). The suites' control checks take the controls of kgnet.
    of: str = "kgnet"


def _set(**settings) -> Callable[[KnowledgeConfig], None]:
    def change(knowledge: KnowledgeConfig) -> None:
        for key, value in settings.items():
            setattr(knowledge, key, value)
    return change


def _only_scale(scale: str) -> Callable[[KnowledgeConfig], None]:
    return _set(scales=[scale], head="prototype")


def _without_scale(scale: str) -> Callable[[KnowledgeConfig], None]:
    def change(knowledge: KnowledgeConfig) -> None:
        knowledge.scales = [s for s in knowledge.scales if s != scale]
    return change


def _random_text(knowledge: KnowledgeConfig) -> None:
    if knowledge.head == "concept" and knowledge.concept_vectors == "free" and not knowledge.concept_infusion:
        raise ConfigError("variants: kgnet-randomtext replaces the node text, which a concept head with free "
                          "concept vectors and no infusion does not read, so it would train kgnet again; use "
                          "kgnet-permuted or kgnet-noknowledge, or compare kgnet-composed with it")
    knowledge.text_control = "random"


def _empty_graph(knowledge: KnowledgeConfig) -> None:
    if knowledge.head == "concept":
        raise ConfigError("variants: kgnet-empty removes every edge, so a concept head links no class to any "
                          "concept and scores every class alike (a constant model, not a control); use "
                          "kgnet-noknowledge, or kgnet-empty with knowledge.head=prototype")
    knowledge.graph_control = "empty"


def _noknowledge(knowledge: KnowledgeConfig) -> None:
    # no edge is read (per-node layers in place of the R-GCN's messages) and the text is noise
    _set(head="concept", concept_control="identity", text_control="random")(knowledge)
    _without_scale("relation")(knowledge)


#: The composed model: the R-GCN's node embeddings as the concept vectors, and the infusion.
_COMPOSED = dict(head="concept", concept_vectors="graph", concept_infusion=True)


def _composed(**more) -> Callable[[KnowledgeConfig], None]:
    return _set(**{**_COMPOSED, **more})


def _composed_without_relation(knowledge: KnowledgeConfig) -> None:
    _composed()(knowledge)
    _without_scale("relation")(knowledge)


_ENTRIES = (
    Variant("baseline", "the backbone, its pooling and an MLP head alone (every knowledge scale off)", "model",
            "#333333", _set(scales=[])),
    Variant("kgnet", "knowledge as configured: by default the concept head (class scores as exact sums of "
            "ontology-concept activations, free concept vectors)", "model", "#1f77b4", _set()),
    Variant("kgnet-composed", "R-GCN node embeddings as the concept head's concept vectors, cross-attention "
            "infusion, concept head: every part, end to end", "model", "#17becf", _composed()),
    Variant("kgnet-permuted", "control: each class given another class's concepts (a derangement)", "control",
            "#d62728", _set(head="concept", concept_control="permuted")),
    Variant("kgnet-noknowledge", "control: one concept per class, no edges read, random node text "
            "(the machinery without knowledge)", "control", "#ff7f0e", _noknowledge),
    Variant("kgnet-composed-permuted", "control of kgnet-composed: each class given another class's concepts (a "
            "derangement), with the R-GCN, the node text and the infusion kept", "control", "#ff9896",
            _composed(concept_control="permuted"), of="kgnet-composed"),
    Variant("kgnet-shuffled", "control: the ontology's edges rewired at random, degrees kept", "control", "#e377c2",
            _set(graph_control="shuffled")),
    Variant("kgnet-randomtext", "control: node text replaced by random vectors", "control", "#8c564b", _random_text),
    Variant("kgnet-empty", "control: the graph without edges", "control", "#7f7f7f", _empty_graph),
    Variant("kgnet-no-rgcn", "ablation of kgnet-composed: node embeddings without message passing (text and "
            "learned inputs per node)", "ablation", "#bcbd22", _composed_without_relation, of="kgnet-composed"),
    Variant("kgnet-no-infusion", "ablation of kgnet-composed: concepts scored on the backbone's own tokens (no "
            "cross-attention)", "ablation", "#aec7e8", _composed(concept_infusion=False), of="kgnet-composed"),
    Variant("kgnet-no-text", "ablation of kgnet-composed: no node text read (learned node inputs alone)", "ablation",
            "#c5b0d5", _composed(text_control="off"), of="kgnet-composed"),
    Variant("kgnet-prototype", "the paper's design: R-GCN, cross-attention infusion, prototype head, alignment "
            "stage", "model", "#9467bd", _set(head="prototype")),
    *(Variant(f"kgnet-{s}", f"ablation: the prototype design with only the {s} scale", "ablation", f"C{i}",
              _only_scale(s), of="kgnet-prototype") for i, s in enumerate(SCALES)),
)
VARIANTS: dict[str, Variant] = {v.name: v for v in _ENTRIES}
"""Variant name -> its entry. `variants` in the config picks from these."""


def check_variants(names: list[str]) -> None:
    """Raise one ConfigError naming unknown or repeated variants."""
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        hints = {n: difflib.get_close_matches(n, list(VARIANTS), n=1) for n in unknown}
        said = ", ".join(f"{n!r}" + (f" (did you mean {h[0]!r}?)" if h else "") for n, h in hints.items())
        raise ConfigError(f"variants: unknown {said}; known: {', '.join(VARIANTS)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"variants: each name once, got {names}")
    if not names:
        raise ConfigError("variants: name at least one (e.g. [baseline, kgnet])")


def variant_config(config: Config, name: str) -> Config:
    """The run's config with the knowledge settings of variant `name`."""
    check_variants([name])
    out = copy.deepcopy(config)
    VARIANTS[name].change(out.knowledge)
    return out


def aligns(config: Config) -> bool:
    """Whether the variant has an alignment stage (its head's; the others train every epoch
    with cross-entropy)."""
    return head_spec(config).aligns
