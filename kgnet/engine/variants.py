"""Named variants a run trains and compares: the baseline, kgnet, and its ablations.

Every variant shares data, augmentation, optimiser and epochs; only the knowledge settings
differ. `baseline` has every knowledge scale off, which makes it exactly the plain backbone
with its pooling and MLP head.
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
    **{f"kgnet-{s}": f"only the {s} scale" for s in SCALES},
    "kgnet-shuffled": "all configured scales, graph edges rewired at random (degree kept)",
    "kgnet-empty": "all configured scales, graph without edges",
    "kgnet-randomtext": "all configured scales, node text replaced by random vectors",
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
    elif name in (f"kgnet-{s}" for s in SCALES):
        knowledge.scales = [name.split("-", 1)[1]]
    elif name == "kgnet-shuffled":
        knowledge.graph_control = "shuffled"
    elif name == "kgnet-empty":
        knowledge.graph_control = "empty"
    elif name == "kgnet-randomtext":
        knowledge.text_control = "random"
    return out


def uses_knowledge(config: Config) -> bool:
    return bool(config.knowledge.scales)
