"""The registry of variants a run trains and compares: each is a composition of registered parts.

A variant names its parts (`kgnet.models.registry.PARTS`: a head, and optionally the graph
encoder and the infusion), the control that breaks one kind of its knowledge
(`kgnet.models.controls.CONTROLS`), and the settings an ablation fixes (the knowledge scales
its graph encoder reads). `kgnet.train`, the benchmark suites, the report, predict and explain all read
this table, so a new variant or control is one entry here (a new head is one file in
`kgnet/models/heads/` and its entry).

Every variant shares data, augmentation, optimiser and steps; only the parts differ. `baseline`
is the backbone with its pooling and the MLP head, nothing else. The controls go through the
same code as the variant they control (`of`) and destroy one kind of information each, so a gain
over them is the knowledge's.

This module is light (no torch): the parts are named here and looked up when a model is built.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from kgnet.config import SCALES
from kgnet.errors import ConfigError

__all__ = ["VARIANTS", "Variant", "check_variants"]



@dataclass(frozen=True)
class Variant:
    """A registered variant (see the module doc).

    Attributes:
        name: What `variants` in the config names it.
        description: One line for the configuration reference and the report.
        role: `model`, `control` or `ablation`.
        colour: Its colour in plots.
        parts: Registered parts it is composed of: one head, and optionally `graph_encoder` and
            `infusion` (the model has `NoGraphEncoder` / `NoInfusion` in the slots it leaves out).
        control: The registered control it applies (`none`: the knowledge as it is).
        fixed: Settings it fixes, as (dotted key, value) pairs: a scale ablation fixes
            `graph_encoder.scales`. The run's value of such a setting is not read by it.
        of: For a control or an ablation, the variant it is measured against.
    """

    name: str
    description: str
    role: str
    colour: str
    parts: tuple[str, ...]
    control: str = "none"
    fixed: tuple[tuple[str, Any], ...] = ()
    of: str = "kgnet"

    def value(self, config, key: str) -> Any:
        """Setting `key` as this variant reads it: the value it fixes, else the config's."""
        section, name = key.split(".", 1)
        return dict(self.fixed).get(key, getattr(getattr(config, section), name))


#: The composed model: the R-GCN's node embeddings as the concept head's concept vectors, and the infusion.
COMPOSED = ("graph_encoder", "infusion", "concept_head")
#: The composed model with the inductive R-GCN: a node's embedding from its text and neighbours (plus a
#: correction that starts at zero), so nodes added to the ontology after training get one.
INDUCTIVE = ("inductive_graph_encoder", "infusion", "concept_head")
#: The paper's design: the R-GCN, the infusion and the prototype head with its alignment stage.
PROTOTYPE = ("graph_encoder", "infusion", "prototype_head")

_ENTRIES = (
    Variant("baseline", "the backbone, its pooling and an MLP head alone (no knowledge)", "model", "#333333",
            ("mlp_head",)),
    Variant("kgnet", "the concept head: class scores as exact sums of ontology-concept activations, free concept "
            "vectors (the default, chosen on validation)", "model", "#1f77b4", ("concept_head",)),
    Variant("kgnet-composed", "R-GCN node embeddings as the concept head's concept vectors, cross-attention "
            "infusion, concept head: every part, end to end", "model", "#17becf", COMPOSED),
    Variant("kgnet-permuted", "control: each class given another class's concepts (a derangement)", "control",
            "#d62728", ("concept_head",), control="permuted"),
    Variant("kgnet-noknowledge", "control: one concept per class (the concept head's machinery without knowledge)",
            "control", "#ff7f0e", ("concept_head",), control="identity"),
    Variant("kgnet-composed-permuted", "control of kgnet-composed: each class given another class's concepts (a "
            "derangement), with the R-GCN, the node text and the infusion kept", "control", "#ff9896", COMPOSED,
            control="permuted", of="kgnet-composed"),
    Variant("kgnet-shuffled", "control: the ontology's edges rewired at random, degrees kept", "control", "#e377c2",
            ("concept_head",), control="shuffled"),
    Variant("kgnet-randomtext", "control of kgnet-composed: node text replaced by random vectors", "control",
            "#8c564b", COMPOSED, control="random_text", of="kgnet-composed"),
    Variant("kgnet-empty", "control of kgnet-prototype: the graph without edges", "control", "#7f7f7f", PROTOTYPE,
            control="empty", of="kgnet-prototype"),
    Variant("kgnet-no-rgcn", "ablation of kgnet-composed: node embeddings without message passing (text and "
            "learned inputs per node)", "ablation", "#bcbd22", COMPOSED, fixed=(("graph_encoder.scales", ("category", "wide")),),
            of="kgnet-composed"),
    Variant("kgnet-no-infusion", "ablation of kgnet-composed: concepts scored on the backbone's own tokens (no "
            "cross-attention)", "ablation", "#aec7e8", ("graph_encoder", "concept_head"), of="kgnet-composed"),
    Variant("kgnet-no-text", "ablation of kgnet-composed: no node text read (learned node inputs alone)", "ablation",
            "#c5b0d5", COMPOSED, control="no_text", of="kgnet-composed"),
    Variant("kgnet-inductive", "the composed model with an inductive R-GCN: node embeddings from text and "
            "relations plus a decayed per-node correction, so classes and concepts added to the ontology after "
            "training are scored", "model", "#1b9e77", INDUCTIVE),
    Variant("kgnet-inductive-permuted", "control of kgnet-inductive: each class given another class's concepts (a "
            "derangement)", "control", "#66c2a5", INDUCTIVE, control="permuted", of="kgnet-inductive"),
    Variant("kgnet-inductive-no-text", "control of kgnet-inductive: no node text read, so a node added after "
            "training has only its relations to the trained nodes (and their corrections)", "control", "#a6d854",
            INDUCTIVE, control="no_text", of="kgnet-inductive"),
    Variant("kgnet-prototype", "the paper's design: R-GCN, cross-attention infusion, prototype head, alignment "
            "stage", "model", "#9467bd", PROTOTYPE),
    *(Variant(f"kgnet-{s}", f"ablation: the prototype design with only the {s} scale", "ablation", f"C{i}",
              PROTOTYPE, fixed=(("graph_encoder.scales", (s,)),), of="kgnet-prototype") for i, s in enumerate(SCALES)),
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
