"""Named variants a run trains and compares: the baseline, kgnet, its controls and ablations.

Every variant shares data, augmentation, optimiser and epochs; only the knowledge settings
differ. `baseline` has every knowledge scale off, which makes it exactly the plain backbone
with its pooling and MLP head. The controls go through the same code as `kgnet` and destroy
one kind of information each, so a gain over them is the knowledge's:

- `kgnet-permuted`: each class gets another class's concepts (same geometry, wrong meaning);
- `kgnet-noknowledge`: one concept per class (the concept head's machinery, no knowledge);
- `kgnet-shuffled`: the ontology's edges rewired at random, degrees kept;
- `kgnet-randomtext`: node text replaced by random vectors (only the prototype head reads text).
"""

from __future__ import annotations

import copy
import difflib

from kgnet.config import Config
from kgnet.errors import ConfigError

SCALES = ("category", "relation", "wide")

VARIANTS: dict[str, str] = {
    "baseline": "the backbone, pooling and MLP head alone (every knowledge scale off)",
    "kgnet": "knowledge as configured (knowledge.scales, controls)",
    **{f"kgnet-{s}": f"the prototype design with only the {s} scale" for s in SCALES},
    "kgnet-shuffled": "all configured scales, graph edges rewired at random (degree kept)",
    "kgnet-empty": "all configured scales, graph without edges",
    "kgnet-randomtext": "all configured scales, node text replaced by random vectors",
    "kgnet-permuted": "concept head, each class given another class's concepts (a derangement)",
    "kgnet-noknowledge": "concept head with one concept per class: the machinery without knowledge",
    "kgnet-prototype": "the paper's design: R-GCN, cross-attention infusion, prototype head, alignment stage",
    "kgnet-concept": "ablation: the concept head alone (free concept vectors, no R-GCN, no infusion)",
    "kgnet-no-rgcn": "ablation: node embeddings without message passing (text and learned inputs per node)",
    "kgnet-no-infusion": "ablation: concepts scored on the backbone's tokens, no cross-attention infusion",
    "kgnet-no-text": "ablation: no node text read (learned node inputs alone)",
}
"""Variant name -> what it changes. `variants` in the config picks from these."""


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
    knowledge = out.knowledge
    if name == "baseline":
        knowledge.scales = []
    elif name in (f"kgnet-{s}" for s in SCALES):  # the scales are the prototype design's
        knowledge.scales = [name.split("-", 1)[1]]
        knowledge.head = "prototype"
    elif name == "kgnet-shuffled":
        knowledge.graph_control = "shuffled"
    elif name == "kgnet-empty":
        knowledge.graph_control = "empty"
    elif name == "kgnet-randomtext":
        if knowledge.head == "concept" and knowledge.concept_vectors == "free" and not knowledge.concept_infusion:
            raise ConfigError("variants: kgnet-randomtext replaces the node text, which the concept head "
                              "(knowledge.head=concept) does not read, so it would train kgnet again; use "
                              "kgnet-permuted or kgnet-noknowledge, or set knowledge.head=prototype")
        knowledge.text_control = "random"
    elif name in ("kgnet-permuted", "kgnet-noknowledge"):
        knowledge.head = "concept"
        knowledge.concept_control = "permuted" if name == "kgnet-permuted" else "identity"
        if name == "kgnet-noknowledge":  # the graph encoder and infusion stay, reading nothing true
            knowledge.graph_control, knowledge.text_control = "empty", "random"
    elif name == "kgnet-prototype":
        knowledge.head = "prototype"
    elif name == "kgnet-concept":
        knowledge.head, knowledge.concept_vectors, knowledge.concept_infusion = "concept", "free", False
    elif name == "kgnet-no-rgcn":
        knowledge.scales = [s for s in knowledge.scales if s != "relation"]
    elif name == "kgnet-no-infusion":
        knowledge.concept_infusion = False
    elif name == "kgnet-no-text":
        knowledge.text_control = "off"
    return out


def uses_knowledge(config: Config) -> bool:
    return bool(config.knowledge.scales)


def graph_hops(configs: list[Config]) -> int:
    """Hops of the run's class graph: `knowledge.hops`, or further when a concept-head variant's
    concepts reach `knowledge.concept_hops` (every variant of a run shares one graph)."""
    hops = [c.knowledge.hops for c in configs]
    hops += [c.knowledge.concept_hops for c in configs if uses_knowledge(c) and c.knowledge.head == "concept"]
    return max(hops)


def aligns(config: Config) -> bool:
    """Whether the variant has the alignment stage (the prototype head's; the concept head and
    the baseline train every epoch with cross-entropy)."""
    return uses_knowledge(config) and config.knowledge.head == "prototype"
