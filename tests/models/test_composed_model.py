"""The composed model (`kgnet-composed`: R-GCN graph encoder, zero-initialised infusion, concept
head over the R-GCN's node embeddings) and the default kgnet (the concept head alone, free
concept vectors) on the shipped garments ontology: every part learns, no model has a parameter
its forward never uses, DDP looks for unused parameters only where a backbone's pooling has
some, contributions are exact, and a variant trains the same alone or beside another whose
head needs a wider graph."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from kgnet.config import Config, load_config
from kgnet.data.cards import load_card
from kgnet.kg.build import build_class_graph
from kgnet.models import ConceptHead, GraphEncoder, Infusion, NoGraphEncoder, NoInfusion, create_model, graph_hops
from kgnet.models.node_vectors import FreeVectors, NodeRows
from kgnet.variants import VARIANTS

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def garments():
    """The Fashion-MNIST classes bound to the shipped garments ontology, as far as the concept
    head's concepts reach (the same graph for kgnet-composed and the default kgnet)."""
    hops = graph_hops(Config(), VARIANTS[COMPOSED])
    assert hops == graph_hops(Config(), VARIANTS["kgnet"])
    card = load_card("fashion_mnist")
    assert card.ontology.name == "fashion_mnist_garments.ttl"
    return build_class_graph(card.ontology, card.classes, wnids=card.wnids, hops=hops)


#: The composed model: R-GCN concept vectors, infusion, concept head.
COMPOSED = "kgnet-composed"


def _config(backbone: str | None = None) -> Config:
    cfg = load_config(None, ["model.embed_dim=32", "graph_encoder.dropout=0.0", "infusion.dropout=0.0"])
    if backbone is not None:
        cfg.model.backbone = backbone
    return cfg


def _model(graph, backbone: str | None = None, variant: str = COMPOSED):
    return create_model(_config(backbone), graph, variant=variant, in_chans=1, image_size=28)


def _images(batch: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def _step(model, seed: int) -> dict[str, torch.Tensor | None]:
    """Forward, cross-entropy, backward on a batch of 4; each parameter's gradient."""
    model.zero_grad(set_to_none=True)
    out = model(_images(seed=seed))
    F.cross_entropy(out.logits, torch.tensor([0, 3, 5, 9])).backward()
    return {name: p.grad for name, p in model.named_parameters()}


def test_every_part_of_the_composed_model_learns(garments) -> None:
    """Step 1 gives every parameter a gradient (none is left out of the graph). Some are zero
    then, exactly those behind a layer that starts at zero: the infusion's inner layers (its
    output layers start at zero, so it starts as the identity) and the residual branches of the
    ResNet's blocks (timm zero-initialises each block's last BatchNorm). After one optimiser
    step every trainable parameter gets a non-zero gradient."""
    assert VARIANTS[COMPOSED].parts == ("graph_encoder", "infusion", "concept_head")
    model = _model(garments)
    assert isinstance(model.graph_encoder, GraphEncoder) and isinstance(model.infusion, Infusion)
    names = [n for n, _ in model.named_parameters()]
    assert not any("classifier" in n for n in names)  # no MLP head
    assert isinstance(model.head, ConceptHead) and isinstance(model.head.vectors, NodeRows)  # the R-GCN's
    for part in ("backbone.", "graph_encoder.", "infusion.", "head."):
        assert any(n.startswith(part) for n in names), part
    counts = model.param_counts()
    assert counts["knowledge"] == sum(p.numel() for n, p in model.named_parameters()
                                      if n.startswith(("graph_encoder.", "infusion.")))
    assert counts["head"] == sum(p.numel() for p in model.head.parameters())

    zero_blocks = {n.removesuffix(".bn2.weight") for n, p in model.named_parameters()
                   if n.endswith(".bn2.weight") and not bool(p.ne(0).any())}
    assert zero_blocks  # timm's zero_init_last
    assert not any(bool(p.ne(0).any()) for p in (*model.infusion.last.out.parameters(),
                                                  *model.infusion.last.mlp[-1].parameters()))

    model.train()
    first = _step(model, seed=0)
    assert [n for n, g in first.items() if g is None] == []
    zero = [n for n, g in first.items() if not bool(g.ne(0).any())]
    behind_a_zero_layer = [n for n in zero if n.startswith("infusion.") or n.rsplit(".", 2)[0] in zero_blocks]
    assert zero == behind_a_zero_layer and any(n.startswith("infusion.last.query") for n in zero)
    assert not any(n.startswith(("graph_encoder.", "head.")) for n in zero)  # the concept vectors learn at once
    assert bool(model.infusion.last.out.weight.grad.ne(0).any())  # and the infusion's output layer

    torch.optim.AdamW(model.parameters(), lr=1e-3).step()
    second = _step(model, seed=1)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    silent = [n for n in trainable if second[n] is None or not bool(second[n].ne(0).any())]
    assert silent == []
    for part in ("graph_encoder.encoder.", "infusion.", "head."):
        assert any(n.startswith(part) for n in trainable), part


def test_the_default_kgnet_has_no_parameter_its_forward_never_uses(garments) -> None:
    """The default kgnet is the concept head alone: free concept vectors of its own, no graph
    encoder, no infusion, no MLP head. Every parameter gets a gradient at once, and a non-zero
    one from the second step on (the first is zero only behind timm's zero-initialised last
    BatchNorm of each residual branch), so DDP need not look for unused parameters with a ResNet."""
    assert VARIANTS["kgnet"].parts == ("concept_head",)
    model = _model(garments, variant="kgnet")
    assert isinstance(model.graph_encoder, NoGraphEncoder) and isinstance(model.infusion, NoInfusion)
    assert isinstance(model.head, ConceptHead) and isinstance(model.head.vectors, FreeVectors)
    assert model.head.vectors.weight.shape == (len(model.head.matrix.names), 32)
    names = [n for n, _ in model.named_parameters()]
    assert not any("classifier" in n for n in names)  # no MLP head
    assert {n.split(".")[0] for n in names} == {"backbone", "head"} and "head.vectors.weight" in names
    counts = model.param_counts()
    assert counts["knowledge"] == 0 and counts["total"] == sum(p.numel() for p in model.parameters())
    model.train()
    grads = _step(model, seed=0)
    assert [n for n, g in grads.items() if g is None] == []
    assert bool(grads["head.vectors.weight"].ne(0).any())  # the concept vectors learn at once
    torch.optim.AdamW(model.parameters(), lr=1e-3).step()
    second = _step(model, seed=1)
    assert [n for n, g in second.items() if g is None or not bool(g.ne(0).any())] == []
    assert not model.has_idle_parameters()


@pytest.mark.parametrize("variant", [COMPOSED, "kgnet"])
def test_ddp_looks_for_unused_parameters_only_where_the_model_has_them(garments, variant: str) -> None:
    """The trainer's choice of `find_unused_parameters` for the composed model and the default
    kgnet (cross-entropy only, no alignment stage): off when every parameter is used (a ResNet,
    a class-token ViT), on where the backbone's pooling has layers of its own that a
    token-reading head never runs (ConvNeXt's head norm). tests/test_distributed.py checks the
    DDP objects of real runs."""
    for backbone, idle in (("resnet10t", False), ("test_vit", False), ("test_convnext", True)):
        model = _model(garments, backbone, variant)
        assert isinstance(model.graph_encoder, NoGraphEncoder) is (variant == "kgnet")
        assert model.has_idle_parameters() is idle, backbone
        model.train()
        unused = [n for n, g in _step(model, seed=0).items() if g is None]
        assert bool(unused) is idle, (backbone, unused)
        assert unused == [f"backbone.model.{n}" for n in model.backbone.pooling_only_parameters()]


@pytest.mark.parametrize("variant", [COMPOSED, "kgnet"])
def test_removing_a_concept_moves_each_logit_by_its_contribution(garments, variant: str) -> None:
    """Exact removal in the composed model (after a training step, so the infusion is no longer
    the identity) and in the default kgnet (the concept head alone): concept j's contribution to
    class k is exactly what setting c_j = 0 takes from class k's logit."""
    model = _model(garments, variant=variant)
    model.train()
    _step(model, seed=0)
    torch.optim.AdamW(model.parameters(), lr=1e-2).step()
    model.eval()
    x = _images(3, seed=7)
    head = model.head
    with torch.no_grad():
        out = model(x)
        c = out.concepts
        # the concept activations are the head's on the fused tokens, its vectors the R-GCN's
        # (the default kgnet: the backbone's own tokens, its own vectors)
        tokens = head.read(model.backbone, model.forward_features(x))
        nodes = model.node_embeddings()
        assert (nodes is None) is (variant == "kgnet")
        activations, scores = head.concept_activations(tokens, nodes=nodes)
        logits = head.logits_from_concepts(c)
        contributions = head.contributions(c)
    torch.testing.assert_close(activations, c, rtol=0, atol=0)
    assert scores.shape == (3, out.token_grid[0] * out.token_grid[1], c.shape[1])
    torch.testing.assert_close(logits, out.logits, rtol=0, atol=0)
    torch.testing.assert_close(contributions.sum(-1), logits, rtol=1e-5, atol=1e-5)
    used = head.used.tolist()
    assert len(used) > 5 and bool(c[:, used].ne(0).all())
    for j in used:
        removed = c.clone()
        removed[:, j] = 0
        with torch.no_grad():
            after = head.logits_from_concepts(removed)
        torch.testing.assert_close(logits - after, contributions[:, :, j], rtol=0, atol=1e-5)
    assert bool(contributions[:, (head.weights == 0)].eq(0).all())  # off the ontology's support: nothing


#: The smallest run of the prototype design: 2 images per class, two epochs of 2 steps (the
#: prototype head's alignment epoch first), 5 test images per class, no analysis.
TINY_PROTOTYPE_RUN = (
    "data.samples_per_class=2", "data.val_fraction=0.005", "data.test_per_class=5",
    "train.epochs=2", "train.batch_size=10", "train.min_steps=0", "model.embed_dim=16", "train.analysis=none",
    "model.output_stride=16",
)


def test_a_variant_trains_the_same_alone_and_beside_another(tmp_path: Path) -> None:
    """kgnet-prototype reads a 2-hop graph, kgnet-composed (an R-GCN over the concept head's
    concepts) a 3-hop one: trained beside kgnet-composed, the prototype variant still gets its
    own graph and ends with the numbers it gets alone."""
    from safetensors.torch import load_file

    from kgnet.config import load_config
    from kgnet.release import load_release
    from kgnet.train import run

    metrics, releases = {}, {}
    for name, variants in (("alone", "[kgnet-prototype]"), ("beside", f"[{COMPOSED},kgnet-prototype]")):
        config = load_config(None, (*TINY_PROTOTYPE_RUN, f"variants={variants}"))
        metrics[name] = run(config, tmp_path / name, progress=False)
        releases[name] = load_release(tmp_path / name / "kgnet-prototype")
    alone, beside = releases["alone"], releases["beside"]
    assert alone.graph.num_nodes == beside.graph.num_nodes
    assert alone.graph.node_iris == beside.graph.node_iris
    assert len(alone.model.graph_encoder.node_ids) == len(beside.model.graph_encoder.node_ids)
    assert beside.config.graph_encoder.hops == 2
    # the check has the power to fail: the composed model's graph, which its R-GCN reads, reaches further
    composed = load_release(tmp_path / "beside" / COMPOSED)
    texts = load_file(str(tmp_path / "beside" / COMPOSED / "model.safetensors"))["text_features"]
    assert texts.shape[0] == composed.graph.num_nodes  # its R-GCN reads the node texts: released with it
    assert isinstance(composed.model.graph_encoder, GraphEncoder)
    assert isinstance(composed.model.head.vectors, NodeRows)
    assert composed.graph.num_nodes > beside.graph.num_nodes
    assert len(composed.model.graph_encoder.node_ids) > len(beside.model.graph_encoder.node_ids)
    one, two = metrics["alone"]["kgnet-prototype"], metrics["beside"]["kgnet-prototype"]
    assert one["top1"] == two["top1"] and one["per_class"] == two["per_class"]
    assert one["params"] == two["params"]
