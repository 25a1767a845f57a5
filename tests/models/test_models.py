"""The paper's design (`kgnet-prototype`: R-GCN, infusion, prototype head) on the shipped
Fashion-MNIST ontology with real text features: shapes, gradients, what each scale and control
changes, the baseline, caching, zero-shot. tests/models/test_concept_model.py has the concept head."""

from __future__ import annotations

import copy
import itertools
import subprocess
import sys

import pytest
import torch

from kgnet.config import Config, load_config
from kgnet.data.cards import load_card
from kgnet.errors import ConfigError
from kgnet.kg.build import build_class_graph
from kgnet.kg.graph import KnowledgeGraph
from kgnet.kg.text_features import encode_texts
from kgnet.models import KgnetModel, MLPHead, NoGraphEncoder, NoInfusion, create_model, select_view
from kgnet.models.controls import drop_edges, random_text_features, shuffle_edges
from kgnet.variants import PROTOTYPE, Variant

#: The variant these tests build.
V = "kgnet-prototype"

ALL_SCALES = ["category", "relation", "wide"]
SCALE_SETS = [list(c) for r in (1, 2, 3) for c in itertools.combinations(ALL_SCALES, r)]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def graph() -> KnowledgeGraph:
    card = load_card("fashion_mnist")
    return build_class_graph(card.ontology.with_name("fashion_mnist.ttl"), card.classes, wnids=card.wnids, hops=2)


@pytest.fixture(scope="module")
def text(graph: KnowledgeGraph) -> torch.Tensor:
    return encode_texts(graph.node_texts, progress=False)


def config(*overrides: str) -> Config:
    """The tests' settings: a pinned backbone (they inspect its layers), no dropout in the MLP."""
    return load_config(None, ("model.backbone=resnet18", "mlp_head.dropout=0.0", *overrides))


def composed(control: str = "none") -> Variant:
    """The prototype design with a control."""
    return Variant("kgnet-prototype-test", "", "model", "", PROTOTYPE, control)


def images(batch: int = 2, chans: int = 1, size: int = 28, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, chans, size, size, generator=torch.Generator().manual_seed(seed))


def eval_logits(model: KgnetModel, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(x).logits


# ----------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("backbone,chans,size,grid", [
    ("resnet18", 1, 28, (7, 7)),
    ("resnet18", 3, 32, (8, 8)),
    ("vit_tiny_patch16_224", 1, 28, (7, 7)),
    ("deit_tiny_patch16_224", 3, 32, (8, 8)),
])
def test_output_shapes(graph, text, backbone, chans, size, grid) -> None:
    cfg = config()
    cfg.model.backbone = backbone
    model = create_model(cfg, graph, text, variant=V, in_chans=chans, image_size=size)
    out = model(images(3, chans, size))
    tokens = grid[0] * grid[1]
    assert out.token_grid == grid
    assert out.logits.shape == (3, 10)
    assert out.concepts is None  # the prototype head has no concepts
    assert out.embedding.shape == (3, cfg.model.embed_dim)
    assert out.attention.shape == (3, cfg.infusion.heads, tokens, graph.num_nodes)  # prefix tokens dropped
    assert model.node_embeddings().shape == (graph.num_nodes, cfg.model.embed_dim)
    assert out.class_embeddings.shape == (10, cfg.model.embed_dim)
    assert model.graph_encoder.token_node_ids.tolist() == list(range(graph.num_nodes))
    assert model.graph_encoder.token_labels == graph.node_labels
    base = create_model(cfg, graph, variant="baseline", in_chans=chans, image_size=size)
    base_out = base(images(3, chans, size))
    assert base_out.logits.shape == (3, 10) and base_out.token_grid == grid
    assert base_out.attention is None and base_out.class_embeddings is None


@pytest.mark.parametrize("backbone", ["test_convnext", "test_vit"])
def test_the_backbone_pools_and_normalises_its_own_features(graph, text, backbone) -> None:
    """timm's contract: forward_features, then the backbone's own pooling and head norm
    (ConvNeXt's global pool + LayerNorm, a ViT's class token after its final norm) under the
    head, so every parameter takes part (what DDP without find_unused_parameters needs)."""
    cfg = config()
    cfg.model.backbone = backbone
    x = images(2)
    for model in (create_model(cfg, graph, text, variant=V, in_chans=1, image_size=28),
                  create_model(cfg, graph, text, variant="baseline", in_chans=1, image_size=28)):
        model.eval()
        with torch.no_grad():
            features = model.forward_features(x)
            pooled = model.backbone.model.forward_head(features, pre_logits=True)
            mlp = getattr(model.head, "mlp", model.head)  # the prototype head's MLP, or the baseline's head
            torch.testing.assert_close(model.forward_head(features, pre_logits=True), mlp.embed(pooled))
            torch.testing.assert_close(model.forward_head(features), model(x).logits)
        model.train()
        model(x).logits.sum().backward()
        assert [n for n, p in model.named_parameters() if p.grad is None] == []
    timm_model = model.backbone.model
    norm = timm_model.head.norm if backbone == "test_convnext" else timm_model.norm
    assert norm.weight.grad is not None and float(norm.weight.grad.abs().sum()) > 0
    if backbone == "test_vit":
        assert model.backbone.pools_prefix_tokens


def test_small_input_keeps_tokens_and_grayscale_reaches_the_stem(graph) -> None:
    cfg = config()
    model = create_model(cfg, graph, variant="baseline", in_chans=1, image_size=28)  # output stride 4: timm's 8, stem max-pool dropped
    assert model(images()).token_grid == (7, 7) and isinstance(model.backbone.model.maxpool, torch.nn.Identity)
    cfg.model.output_stride = 8
    assert create_model(cfg, graph, variant="baseline", in_chans=1, image_size=28)(images()).token_grid == (4, 4)
    cfg.model.output_stride = 16
    assert create_model(cfg, graph, variant="baseline", in_chans=1, image_size=28)(images()).token_grid == (2, 2)
    cfg.model.output_stride = 4
    cfg.model.backbone = "efficientnet_b0"  # takes an output stride, has no stem max-pool
    with pytest.raises(ConfigError, match="output_stride: 4 needs a stem max-pool to drop and efficientnet_b0"):
        create_model(cfg, graph, variant="baseline", in_chans=1, image_size=28)
    cfg.model.backbone = "resnet18"
    cfg.model.output_stride, cfg.model.small_input = None, False
    model = create_model(cfg, graph, variant="baseline", in_chans=1, image_size=28)
    assert model(images()).token_grid == (1, 1)  # the ImageNet stem: one token left at 28 px
    assert model.backbone.model.conv1.weight.shape[1] == 1


def test_small_input_on_cnns_without_output_stride_and_on_vits_without_a_size(graph) -> None:
    cfg = config()
    cfg.model.backbone = "mobilenetv3_small_050"  # takes no output_stride: its stem conv gets stride 1
    model = create_model(cfg, graph, variant="baseline", in_chans=1, image_size=28)
    assert model.backbone.model.conv_stem.stride == (1, 1)
    assert model.eval()(images()).token_grid == (2, 2)
    cfg.model.backbone = "vit_tiny_patch16_224"
    with pytest.raises(ConfigError, match="needs the image size"):
        create_model(cfg, graph, variant="baseline", in_chans=1)
    cfg.model.patch_size = 7
    assert create_model(cfg, graph, variant="baseline", in_chans=1, image_size=28)(images()).token_grid == (4, 4)


def test_unknown_backbone_and_bad_stage_are_config_errors(graph, text) -> None:
    cfg = config()
    cfg.model.backbone = "resnet181"
    with pytest.raises(ConfigError, match="unknown timm model 'resnet181'.*resnet18"):
        create_model(cfg, graph, text, variant=V, in_chans=1, image_size=28)
    cfg = config("infusion.early_stages=[4]")
    with pytest.raises(ConfigError, match="infusion.early_stages: 4 is not an earlier stage"):
        create_model(cfg, graph, text, variant=V, in_chans=1, image_size=28)


# ----------------------------------------------------------------------------- training signal


def test_gradients_reach_backbone_rgcn_and_infusion(graph, text) -> None:
    model = create_model(config(), graph, text, variant=V, in_chans=1, image_size=28)
    out = model(images(4))
    align = torch.nn.functional.cross_entropy(out.embedding @ out.class_embeddings.T, torch.arange(4))
    (torch.nn.functional.cross_entropy(out.logits, torch.arange(4)) + align).backward()
    k, infusion = model.graph_encoder, model.infusion
    for name, param in [
        ("backbone stem", model.backbone.model.conv1.weight),
        ("backbone last stage", model.backbone.model.layer4[-1].bn2.weight),  # timm zero-inits it
        ("R-GCN bases", k.encoder.layers[0].conv.weight),
        ("R-GCN coefficients", k.encoder.layers[0].conv.comp),
        ("text projection", k.encoder.input.text.proj.weight),
        ("node embeddings", k.encoder.input.embedding.weight),
        ("infusion query", infusion.last.query.weight),
        ("infusion keys/values", infusion.last.key_value.weight),
        ("infusion MLP", infusion.last.mlp[0].weight),
        ("prototype scale", model.head.prototype.scale.log_scale),
        ("MLP head", model.head.mlp.classifier.weight),
    ]:
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_attention_rows_sum_to_one(graph, text) -> None:
    model = create_model(config("infusion.early_stages=[3]"), graph, text, variant=V, in_chans=1, image_size=28)
    out = model(images(3))
    for attention in (out.attention, out.stage_attention[3]):
        assert (attention >= 0).all()
        torch.testing.assert_close(attention.sum(-1), torch.ones(attention.shape[:-1]))


def test_same_seed_same_model_and_outputs(graph, text) -> None:
    a, b = (create_model(config(), graph, text, variant=V, in_chans=1, image_size=28) for _ in range(2))
    state_a, state_b = a.state_dict(), b.state_dict()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    torch.testing.assert_close(eval_logits(a, images()), eval_logits(b, images()), rtol=0, atol=0)
    other = config()
    other.seed = 1
    c = create_model(other, graph, text, variant=V, in_chans=1, image_size=28)
    assert not torch.equal(eval_logits(a, images()), eval_logits(c, images()))
    # building a model leaves the caller's random stream alone
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    create_model(config(), graph, text, variant=V, in_chans=1, image_size=28)
    assert torch.equal(torch.rand(3), expected)


# ----------------------------------------------------------------------------- the baseline


def test_the_baseline_is_the_backbone_and_the_mlp_head(graph, text) -> None:
    base = create_model(config(), graph, text, variant="baseline", in_chans=1, image_size=28)
    no_graph = create_model(config(), None, variant="baseline", num_classes=10, in_chans=1, image_size=28)
    for model in (base, no_graph):
        assert isinstance(model.graph_encoder, NoGraphEncoder) and isinstance(model.infusion, NoInfusion)
        assert isinstance(model.head, MLPHead)
        assert {k: v.shape for k, v in model.state_dict().items()} == {
            k: v.shape for k, v in base.state_dict().items()}
        assert model.param_counts() == base.param_counts()
        torch.testing.assert_close(eval_logits(model, images()), eval_logits(base, images()), rtol=0, atol=0)
    counts = base.param_counts()
    assert counts["knowledge"] == 0
    assert counts["total"] == counts["backbone"] + counts["head"] == sum(p.numel() for p in base.parameters())
    # the knowledge model starts from the same backbone weights, and its prototype head's MLP
    # from the baseline's head
    full = create_model(config(), graph, text, variant=V, in_chans=1, image_size=28)
    full_state = full.backbone.state_dict()
    assert all(torch.equal(v, full_state[k]) for k, v in base.backbone.state_dict().items())
    mlp_state = full.head.mlp.state_dict()
    assert all(torch.equal(v, mlp_state[k]) for k, v in base.head.state_dict().items())
    full_counts = full.param_counts()
    assert full_counts["backbone"] == counts["backbone"]
    assert full_counts["head"] == counts["head"] + 1  # the MLP and the prototype scale
    assert full_counts["knowledge"] == sum(p.numel() for p in full.graph_encoder.parameters()) + sum(
        p.numel() for p in full.infusion.parameters()) > 0
    assert full_counts["total"] == sum(p.numel() for p in full.parameters())


# ----------------------------------------------------------------------------- scales


def _perturbed_text(text: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    changed = text.clone()
    changed[rows] = random_text_features(text[rows], seed=123)
    return changed


@pytest.mark.parametrize("scales", SCALE_SETS, ids="+".join)
def test_each_scale_switch_removes_its_influence(graph, text, scales) -> None:
    """Class text matters iff `category`, non-class text iff `wide`, edges iff `relation`."""
    cfg = config(f"graph_encoder.scales=[{','.join(scales)}]")
    x = images(2)
    reference = eval_logits(create_model(cfg, graph, text, variant=V, in_chans=1, image_size=28), x)
    is_class = graph.class_mask()
    perturbations = {
        "category": (graph, _perturbed_text(text, is_class.nonzero().flatten())),
        "wide": (graph, _perturbed_text(text, (~is_class).nonzero().flatten())),
        "relation": (drop_edges(graph), text),
    }
    for scale, (g, t) in perturbations.items():
        changed = eval_logits(create_model(cfg, g, t, variant=V, in_chans=1, image_size=28), x)
        moved = not torch.allclose(changed, reference, rtol=0, atol=1e-6)
        assert moved == (scale in scales), f"perturbing what `{scale}` carries, with scales {scales}"


def test_scale_views(graph) -> None:
    is_class, ancestors = graph.class_mask(), graph.ancestors(graph.class_index)
    category = select_view(graph, ["category"])
    assert category.node_ids.tolist() == sorted(graph.class_index.tolist())
    assert category.graph.num_edges == 0 and bool(category.text_mask.all()) and not category.message_passing
    relation = select_view(graph, ["relation"])
    assert relation.node_ids.tolist() == ancestors.tolist() and len(ancestors) > 10
    assert relation.graph.num_edges > 0 and not relation.text_mask.any() and relation.message_passing
    assert len(relation.token_index) == 10  # ancestors relay messages but are no attention tokens
    wide = select_view(graph, ["wide"])
    assert wide.node_ids.tolist() == list(range(graph.num_nodes)) and len(wide.token_index) == graph.num_nodes
    assert torch.equal(wide.text_mask, ~is_class)


# ----------------------------------------------------------------------------- controls


def _degrees(g: KnowledgeGraph) -> list[torch.Tensor]:
    base = g.edge_type < g.num_base_relations
    (src, dst), rel = g.edge_index[:, base], g.edge_type[base]
    key = lambda ids: rel * g.num_nodes + ids  # noqa: E731  (degree per node and relation)
    size = g.num_base_relations * g.num_nodes
    return [torch.bincount(key(src), minlength=size), torch.bincount(key(dst), minlength=size)]


def test_shuffled_graph_keeps_degrees_and_is_seeded(graph) -> None:
    shuffled = shuffle_edges(graph, seed=0)
    assert shuffled.num_edges == graph.num_edges
    for kept, original in zip(_degrees(shuffled), _degrees(graph)):
        assert torch.equal(kept, original)
    base = shuffled.edge_type < shuffled.num_base_relations
    src, dst = shuffled.edge_index[:, base]
    assert torch.equal(shuffled.edge_index[:, ~base], torch.stack([dst, src]))  # inverses rebuilt
    original = set(map(tuple, graph.edge_index.T.tolist()))
    assert len(original - set(map(tuple, shuffled.edge_index.T.tolist()))) > graph.num_edges // 4
    assert torch.equal(shuffle_edges(graph, seed=0).edge_index, shuffled.edge_index)
    assert not torch.equal(shuffle_edges(graph, seed=1).edge_index, shuffled.edge_index)
    assert drop_edges(graph).num_edges == 0


def test_random_text_keeps_norms_and_is_seeded(text) -> None:
    random = random_text_features(text, seed=0)
    torch.testing.assert_close(random.norm(dim=1), text.norm(dim=1))
    assert (torch.nn.functional.cosine_similarity(random, text).abs() < 0.5).all()
    assert torch.equal(random, random_text_features(text, seed=0))


@pytest.mark.parametrize("control", ["shuffled", "empty", "random_text"])
def test_controls_keep_the_architecture_and_change_the_output(graph, text, control) -> None:
    real = create_model(config(), graph, text, variant=V, in_chans=1, image_size=28)
    ablated = create_model(config(), graph, text, variant=composed(control), in_chans=1, image_size=28)
    assert real.param_counts() == ablated.param_counts()
    assert len(real.graph_encoder.token_labels) == len(ablated.graph_encoder.token_labels)
    assert not torch.allclose(eval_logits(real, images()), eval_logits(ablated, images()))


# ----------------------------------------------------------------------------- zero-shot


def test_prototype_logits_for_a_class_without_training_images(graph, text) -> None:
    """Train on classes 0-8 only; class 9 ("Ankle boot") is still scored, from the graph alone."""
    model = create_model(config(), graph, text, variant=V, in_chans=1, image_size=28)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for step in range(2):
        out = model(images(6, seed=step))
        torch.nn.functional.cross_entropy(out.logits[:, :9], torch.arange(6) % 9).backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    x = images(3, seed=9)

    def scores(model, embedding, node_ids):  # the prototype head's cosines with any nodes in view
        nodes = model.node_embeddings()[model.graph_encoder.local_ids(torch.tensor(node_ids))]
        return model.head.score_nodes(embedding, nodes)

    with torch.no_grad():
        out = model(x)
        boot = int(graph.class_index[9])
        zero_shot = scores(model, out.embedding, [boot])
        torch.testing.assert_close(zero_shot[:, 0], scores(model, out.embedding, graph.class_index.tolist())[:, 9])
        # its prototype is the graph's embedding of the class node, so the MLP head's row for the
        # class plays no part in it
        model.head.mlp.classifier.weight[9].normal_()
        torch.testing.assert_close(scores(model, model(x).embedding, [boot]), zero_shot)
    # and its text does
    changed = _perturbed_text(text, graph.class_index[9:])
    other = create_model(config(), graph, changed, variant=V, in_chans=1, image_size=28)
    other.load_state_dict(model.state_dict())
    other.eval()
    with torch.no_grad():
        assert not torch.allclose(scores(other, out.embedding, [boot]), zero_shot)
    # with `wide` on any concept can be scored; without it only what is in view
    footwear = graph.node_labels.index("footwear")
    assert scores(model, out.embedding, [footwear]).shape == (3, 1)
    narrow = create_model(config("graph_encoder.scales=[category]"), graph, text, variant=V, in_chans=1,
                          image_size=28)
    assert narrow.graph_encoder.token_labels == [graph.node_labels[i] for i in sorted(graph.class_index.tolist())]
    with pytest.raises(KeyError, match="not in the model's view"):
        scores(narrow, out.embedding, [footwear])


# ----------------------------------------------------------------------------- eval-mode cache


def test_node_embeddings_are_cached_in_eval_and_invalidated(graph, text) -> None:
    model = create_model(config(), graph, text, variant=V, in_chans=1, image_size=28)
    runs = []
    model.graph_encoder.encoder.register_forward_hook(lambda *args: runs.append(1))
    x = images()
    model(x), model(x)
    assert len(runs) == 2  # training mode: every forward
    model.eval()
    with torch.inference_mode():
        first = model(x).logits
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, first)
    assert len(runs) == 3 and model.graph_encoder.cached
    # with gradients in eval mode (Grad-CAM): the cached embeddings still serve, twice
    for _ in range(2):
        model(x.clone().requires_grad_()).logits.sum().backward()
    assert len(runs) == 3
    # an optimiser step on the encoder invalidates it (eval mode, as a careless loop might)
    for param in model.graph_encoder.encoder.parameters():
        param.grad = torch.full_like(param, 1e-2)
    torch.optim.SGD(model.graph_encoder.encoder.parameters(), lr=1.0).step()
    stepped = eval_logits(model, x)
    assert len(runs) == 4 and not torch.allclose(stepped, first)
    # loading weights invalidates it
    fresh = create_model(config(), graph, text, variant=V, in_chans=1, image_size=28)
    fresh_runs = []
    fresh.graph_encoder.encoder.register_forward_hook(lambda *args: fresh_runs.append(1))
    eval_logits(fresh, x)
    fresh.load_state_dict(model.state_dict())
    torch.testing.assert_close(eval_logits(fresh, x), stepped)
    assert len(fresh_runs) == 2
    # train() clears it; so does an edit by hand
    model.train()
    assert not model.graph_encoder.cached
    eval_logits(model, x)
    with torch.no_grad():
        model.graph_encoder.encoder.norm.bias.add_(1.0)
    assert not torch.allclose(eval_logits(model, x), stepped)
    assert len(runs) == 6


def test_early_infusion_feeds_later_stages(graph, text) -> None:
    plain = create_model(config(), graph, text, variant=V, in_chans=1, image_size=28).eval()
    early = create_model(config("infusion.early_stages=[-2]"), graph, text, variant=V, in_chans=1,
                         image_size=28).eval()
    assert list(early.infusion.stages) == ["3"] and early.infusion.blocks[1] is early.infusion.stages["3"]
    with torch.no_grad():
        # the backbone alone, outside the model's forward, runs without the hook's infusion
        torch.testing.assert_close(early.backbone(images()), plain.backbone(images()))
        assert not torch.allclose(early(images()).logits, plain(images()).logits)
        # hooks follow a deep copy (they call the copy, not the original)
        torch.testing.assert_close(copy.deepcopy(early)(images()).logits, early(images()).logits)
    early.train()
    out = early(images(2))
    assert out.stage_attention[3].shape == (2, 4, 49, graph.num_nodes)  # layer3 is 7x7 at 28 px
    out.logits.sum().backward()
    assert early.infusion.stages["3"].query.weight.grad.abs().sum() > 0
    assert early.backbone.model.conv1.weight.grad.abs().sum() > 0


def test_vit_early_infusion_keeps_prefix_tokens(graph, text) -> None:
    cfg = config("infusion.early_stages=[5]")
    cfg.model.backbone = "deit_tiny_patch16_224"
    model = create_model(cfg, graph, text, variant=V, in_chans=1, image_size=28)
    out = model(images(2))
    assert out.stage_attention[5].shape == (2, 4, 49, graph.num_nodes)
    assert out.attention.shape == (2, 4, 49, graph.num_nodes)


def test_text_features_are_encoded_when_not_given(graph, text) -> None:
    model = create_model(config(), graph, None, variant=V, in_chans=1, image_size=28)
    given = create_model(config(), graph, text, variant=V, in_chans=1, image_size=28)
    torch.testing.assert_close(eval_logits(model, images()), eval_logits(given, images()))


def test_package_import_stays_light_and_exports_create_model() -> None:
    code = "import sys, kgnet; assert 'torch' not in sys.modules; from kgnet import create_model; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr
    with pytest.raises(AttributeError):
        import kgnet

        kgnet.no_such_thing  # noqa: B018


def test_config_validation_of_widths(graph, text) -> None:
    cfg = config("infusion.attention_dim=30")
    with pytest.raises(ConfigError, match="infusion.attention_dim .30. must be divisible by infusion.heads"):
        create_model(cfg, graph, text, variant=V, in_chans=1, image_size=28)
    with pytest.raises(ConfigError, match="graph_encoder.scales must be non-empty"):
        config("graph_encoder.scales=[]")
    with pytest.raises(ValueError, match="needs the class graph"):
        create_model(config(), None, variant=V, num_classes=10)
