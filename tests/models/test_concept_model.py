"""The concept head inside kgnet: built from the config and the garments ontology, its controls
go through the same code, its logits split exactly into concept contributions, and the run
budget (`train.min_steps`) and fixed test subset (`data.test_per_class`) behave as documented."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kgnet.config import Config, TrainConfig, load_config
from kgnet.data.cards import load_card
from kgnet.engine.trainer import epoch_passes, short_training_warning, step_plan
from kgnet.errors import ConfigError
from kgnet.kg.build import build_class_graph
from kgnet.models import (ConceptHead, GraphEncoder, Infusion, MLPHead, NoGraphEncoder, NoInfusion, PrototypeHead,
                          create_model, graph_hops, parts_of)
from kgnet.models.node_vectors import FreeVectors, NodeRows
from kgnet.variants import VARIANTS, Variant, check_variants

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def garments():
    card = load_card("fashion_mnist")
    assert card.ontology.name == "fashion_mnist_garments.ttl"  # the data set's default ontology
    return build_class_graph(card.ontology, card.classes, wnids=card.wnids, hops=3)


def _model(variant: str = "kgnet", graph=None):
    return create_model(Config(), graph, variant=variant, num_classes=10, in_chans=1, image_size=28)


def test_the_default_kgnet_is_a_concept_head_over_the_ontology(garments) -> None:
    model = _model("kgnet", garments)
    # the concept head alone: free concept vectors of its own, no R-GCN, no infusion, no MLP head
    assert isinstance(model.graph_encoder, NoGraphEncoder) and isinstance(model.infusion, NoInfusion)
    assert isinstance(model.head, ConceptHead) and isinstance(model.head.vectors, FreeVectors)
    assert not any("classifier" in n for n, _ in model.named_parameters())  # no MLP head
    # kgnet-composed: the R-GCN's node embeddings are the concept vectors, an infusion block, the concept head
    composed = _model("kgnet-composed", garments)
    assert isinstance(composed.graph_encoder, GraphEncoder) and isinstance(composed.infusion, Infusion)
    assert isinstance(composed.head, ConceptHead) and isinstance(composed.head.vectors, NodeRows)
    assert not any("classifier" in n for n, _ in composed.named_parameters())
    assert composed.head.matrix.names == model.head.matrix.names  # the same concepts, other vectors
    names = model.head.matrix.names
    weights = model.head.weights
    sandal, pullover = garments.class_names.index("Sandal"), garments.class_names.index("Pullover")
    assert "strap" in {names[j].lower() for j in weights[sandal].nonzero().flatten().tolist()}
    assert "sleeve" in {names[j].lower() for j in weights[pullover].nonzero().flatten().tolist()}
    assert torch.allclose(weights.sum(1), torch.ones(10))  # self_weight 0: shared concepts only
    model.eval()
    x = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(x)
        contributions = model.head.contributions(out.concepts)
    assert out.concepts.shape == (3, len(names)) and out.embedding is out.concepts
    assert torch.allclose(contributions.sum(-1), out.logits, atol=1e-5)  # the logits are the contributions


def test_controls_change_only_the_class_concept_matrix(garments) -> None:
    kgnet, permuted, identity, shuffled = (_model(v, garments) for v in
                                           ("kgnet", "kgnet-permuted", "kgnet-noknowledge", "kgnet-shuffled"))
    assert torch.equal(identity.head.weights, torch.eye(10))
    a, p = kgnet.head.weights, permuted.head.weights
    assert a.shape == p.shape and not torch.equal(a, p)
    assert sorted(a.sum(1).tolist()) == pytest.approx(sorted(p.sum(1).tolist()))  # same rows, other classes
    assert {tuple(r) for r in a.tolist()} == {tuple(r) for r in p.tolist()}
    s = shuffled.head.weights  # concepts reached through rewired edges
    assert s.shape != a.shape or not torch.equal(s, a)
    # same backbone initialisation in every variant (the pairing of the suite)
    for other in (permuted, identity, shuffled):
        for (name, w1), (_, w2) in zip(kgnet.backbone.state_dict().items(), other.backbone.state_dict().items()):
            assert torch.equal(w1, w2), name


def test_variants_are_compositions_of_registered_parts() -> None:
    slots = {name: parts_of(variant) for name, variant in VARIANTS.items()}
    assert [slots["baseline"][s] for s in ("head", "graph_encoder", "infusion")] == [MLPHead, NoGraphEncoder,
                                                                                     NoInfusion]
    assert [slots["kgnet"][s] for s in ("head", "graph_encoder", "infusion")] == [ConceptHead, NoGraphEncoder,
                                                                                  NoInfusion]
    for name in ("kgnet-composed", "kgnet-composed-permuted", "kgnet-randomtext", "kgnet-no-rgcn", "kgnet-no-text"):
        assert [slots[name][s] for s in ("head", "graph_encoder", "infusion")] == [ConceptHead, GraphEncoder,
                                                                                   Infusion], name
    assert slots["kgnet-no-infusion"]["infusion"] is NoInfusion
    for name in ("kgnet-prototype", "kgnet-empty", "kgnet-category", "kgnet-relation", "kgnet-wide"):
        assert slots[name]["head"] is PrototypeHead and slots[name]["graph_encoder"] is GraphEncoder, name
    assert VARIANTS["kgnet-no-rgcn"].fixed == (("graph_encoder.scales", ("category", "wide")),)  # no message passing
    assert (VARIANTS["kgnet-permuted"].control, VARIANTS["kgnet-noknowledge"].control) == ("permuted", "identity")
    # a control none of a variant's parts reads would train the variant again: refused, with why
    free = ("concept_head",)
    with pytest.raises(ValueError, match="random_text control breaks the text, which no part of it reads"):
        parts_of(Variant("x", "", "control", "", free, control="random_text"))
    with pytest.raises(ValueError, match="empty control removes every edge, so a concept head links no class"):
        parts_of(Variant("x", "", "control", "", free, control="empty"))
    with pytest.raises(ValueError, match="prototype_head reads node embeddings, but it has no graph_encoder"):
        parts_of(Variant("x", "", "model", "", ("prototype_head",)))
    with pytest.raises(ValueError, match="two parts fill the head slot"):
        parts_of(Variant("x", "", "model", "", ("concept_head", "mlp_head")))
    with pytest.raises(KeyError, match="no model part 'concept_heads' .did you mean 'concept_head'"):
        parts_of(Variant("x", "", "model", "", ("concept_heads",)))
    with pytest.raises(ConfigError, match="unknown 'kgnet-concept'"):  # the default kgnet now
        check_variants(["kgnet-concept"])
    # each variant gets its own graph: as far as its own parts reach
    cfg = Config()
    assert graph_hops(cfg, VARIANTS["baseline"]) == 0
    assert graph_hops(cfg, VARIANTS["kgnet-prototype"]) == cfg.graph_encoder.hops == 2
    assert graph_hops(cfg, VARIANTS["kgnet"]) == graph_hops(cfg, VARIANTS["kgnet-composed"]) == 3
    assert cfg.concept_head.hops == 3
    # the alignment stage is the prototype head's, as many epochs as its section says
    prototype = load_config(None, ["prototype_head.align_epochs=2"])
    assert PrototypeHead.sections == ("prototype_head", "mlp_head") and prototype.prototype_head.align_epochs == 2


def test_min_steps_repeats_a_small_training_set() -> None:
    assert epoch_passes(10, 25, 3, 250) == 84  # 1 batch an epoch, 3 epochs: 84 passes make 252 steps
    assert epoch_passes(54_000, 128, 1, 250) == 1
    assert epoch_passes(10, 25, 0, 250) == 1
    assert short_training_warning(step_plan(50, TrainConfig(batch_size=25, epochs=3, min_steps=250))) is None
    assert short_training_warning(step_plan(50, TrainConfig(batch_size=25, epochs=3, min_steps=0))) is not None


def test_the_test_subset_is_fixed_and_stratified() -> None:
    from kgnet.data.builder import build_datasets

    cfg = Config().data
    cfg.test_per_class = 20
    first = build_datasets(cfg, seed=0, augment=False)
    second = build_datasets(cfg, seed=5, augment=False)
    labels = first.test.labels.numpy()
    assert np.bincount(labels).tolist() == [20] * 10
    assert torch.equal(first.test.images, second.test.images)  # the same images for every seed
