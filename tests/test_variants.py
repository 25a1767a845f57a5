"""Every entry of the variant registry (`kgnet.engine.variants.VARIANTS`) is a working variant:
it builds a model on the shipped garments ontology that scores every class, or its change is
refused with one ConfigError saying why (a control that would train kgnet again). So a new
control really is one entry: this test covers it without being edited."""

from __future__ import annotations

import pytest
import torch

from kgnet.config import Config
from kgnet.config_docs import render_config_reference
from kgnet.data.cards import load_card
from kgnet.engine.variants import VARIANTS, graph_hops, uses_knowledge, variant_config
from kgnet.errors import ConfigError
from kgnet.kg.build import build_class_graph
from kgnet.models import create_model

pytestmark = pytest.mark.usefixtures("one_thread")


def _config() -> Config:
    cfg = Config()
    cfg.model.embed_dim = 32
    cfg.model.output_stride = 16  # a 2x2 grid: cheap, and every part still runs
    return cfg


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_registered_variant_builds_and_scores_or_is_refused_clearly(name: str) -> None:
    variant = VARIANTS[name]
    assert variant.role in ("model", "control", "ablation") and variant.colour and variant.description
    try:
        cfg = variant_config(_config(), name)
    except ConfigError as err:
        assert variant.role == "control" and name in str(err)  # says which variant and why
        return
    card = load_card("fashion_mnist")
    graph = build_class_graph(card.ontology, card.classes, wnids=card.wnids, hops=graph_hops(cfg))
    model = create_model(cfg, graph, in_chans=1, image_size=28, baseline=not uses_knowledge(cfg)).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))).logits
    assert logits.shape == (2, len(card.classes)) and bool(torch.isfinite(logits).all())
    assert f"| `{name}` | {variant.role}" in render_config_reference()  # the reference lists it
    if variant.role != "model":
        assert VARIANTS[variant.of].role == "model"  # measured against a model of the registry
