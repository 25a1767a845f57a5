"""The concept head inside kgnet: built from the config and the garments ontology, its controls
go through the same code, its logits split exactly into concept contributions, and the run
budget (`train.min_steps`) and fixed test subset (`data.test_per_class`) behave as documented."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kgnet.config import Config
from kgnet.data.cards import load_card
from kgnet.engine.trainer import epoch_passes, short_training_warning
from kgnet.engine.variants import aligns, graph_hops, variant_config
from kgnet.errors import ConfigError
from kgnet.kg.build import build_class_graph
from kgnet.models import create_model
from kgnet.models.concept_head import ConceptHead
from kgnet.models.graph_encoder import GraphEncoder
from kgnet.models.infusion import InfusionBlock

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def garments():
    card = load_card("fashion_mnist")
    assert card.ontology.name == "fashion_mnist_garments.ttl"  # the data set's default ontology
    return build_class_graph(card.ontology, card.classes, wnids=card.wnids, hops=3)


def _config(variant: str = "kgnet") -> Config:
    cfg = Config()
    cfg.model.dropout = 0.0
    return variant_config(cfg, variant)


def test_the_default_kgnet_is_a_concept_head_over_the_ontology(garments) -> None:
    model = create_model(_config(), garments, num_classes=10, in_chans=1, image_size=28)
    # the concept head alone: free concept vectors of its own, no R-GCN, no infusion, no MLP head
    assert model.graph_encoder is None and model.infusion is None and not model.stage_infusion
    assert isinstance(model.head, ConceptHead) and isinstance(model.head.concepts, torch.nn.Parameter)
    assert model.head.node_index is None
    assert not any("classifier" in n for n, _ in model.named_parameters())  # no MLP head
    # kgnet-composed: the R-GCN's node embeddings are the concept vectors, an infusion block, the concept head
    composed = create_model(_config("kgnet-composed"), garments, num_classes=10, in_chans=1, image_size=28)
    assert isinstance(composed.graph_encoder, GraphEncoder) and isinstance(composed.infusion, InfusionBlock)
    assert isinstance(composed.head, ConceptHead) and composed.head.concepts is None
    assert not any("classifier" in n for n, _ in composed.named_parameters())
    assert composed.concept_names == model.concept_names  # the same concepts, other vectors
    names = model.concept_names
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
    def build(variant):
        return create_model(_config(variant), garments, num_classes=10, in_chans=1, image_size=28)

    kgnet, permuted, identity, shuffled = (build(v) for v in
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


def test_variants_say_which_heads_and_stages_they_use() -> None:
    assert not aligns(_config("kgnet")) and not aligns(_config("baseline"))
    assert aligns(_config("kgnet-prototype")) and aligns(_config("kgnet-relation"))
    assert _config("kgnet-permuted").knowledge.concept_control == "permuted"
    # the default kgnet (a concept head with free vectors, no infusion) reads no node text: its
    # random-text control would train kgnet again, so it is refused ...
    knowledge = Config().knowledge
    assert (knowledge.concept_vectors, knowledge.concept_infusion) == ("free", False)
    with pytest.raises(ConfigError, match="kgnet-randomtext.*does not read"):
        _config("kgnet-randomtext")
    # ... but allowed where the node text is read: the prototype head's R-GCN, the composed model's
    cfg = Config()
    cfg.knowledge.head = "prototype"
    assert variant_config(cfg, "kgnet-randomtext").knowledge.text_control == "random"
    composed = _config("kgnet-composed")
    assert (composed.knowledge.head, composed.knowledge.concept_vectors, composed.knowledge.concept_infusion) == (
        "concept", "graph", True)
    assert variant_config(composed, "kgnet-randomtext").knowledge.text_control == "random"
    for vectors, infusion in (("graph", False), ("both", False), ("free", True)):
        cfg = Config()
        cfg.knowledge.concept_vectors, cfg.knowledge.concept_infusion = vectors, infusion
        assert variant_config(cfg, "kgnet-randomtext").knowledge.text_control == "random", (vectors, infusion)
    # the ablations are of the composed model, one part removed each
    assert _config("kgnet-no-infusion").knowledge.concept_infusion is False
    assert _config("kgnet-no-infusion").knowledge.concept_vectors == "graph"
    assert "relation" not in _config("kgnet-no-rgcn").knowledge.scales
    assert _config("kgnet-no-rgcn").knowledge.concept_infusion is True
    assert _config("kgnet-no-text").knowledge.text_control == "off"
    assert _config("kgnet-no-text").knowledge.concept_vectors == "graph"
    with pytest.raises(ConfigError, match="unknown 'kgnet-concept'"):  # the default kgnet now
        _config("kgnet-concept")
    # each variant gets its own graph: as far as its own head reaches
    assert graph_hops(_config("baseline")) == graph_hops(_config("kgnet-prototype")) == Config().knowledge.hops == 2
    assert graph_hops(_config("kgnet")) == graph_hops(_config("kgnet-composed")) == Config().knowledge.concept_hops == 3


def test_min_steps_repeats_a_small_training_set() -> None:
    assert epoch_passes(10, 25, 3, 250) == 84  # 1 batch an epoch, 3 epochs: 84 passes make 252 steps
    assert epoch_passes(54_000, 128, 1, 250) == 1
    assert epoch_passes(10, 25, 0, 250) == 1
    assert short_training_warning(50, 25, 2, passes=epoch_passes(50, 25, 3, 250)) is None
    assert short_training_warning(50, 25, 2, passes=epoch_passes(50, 25, 3, 0)) is not None


def test_the_test_subset_is_fixed_and_stratified() -> None:
    from kgnet.data.builder import build_datasets

    cfg = Config().data
    cfg.test_per_class = 20
    first = build_datasets(cfg, seed=0, augment=False)
    second = build_datasets(cfg, seed=5, augment=False)
    labels = first.test.labels.numpy()
    assert np.bincount(labels).tolist() == [20] * 10
    assert torch.equal(first.test.images, second.test.images)  # the same images for every seed
