"""`create_model`: a baseline or knowledge-injected `KgnetModel` from a `Config` and a graph.

Weights are initialised from `config.seed` inside a forked RNG (the caller's random state is
left alone): the backbone from the seed itself, every other part from its own stream, so a
baseline and a knowledge-injected model built from the same config start with the same
backbone, and a part starts the same whichever other parts the model has. Which parts a
model has is its head's entry in `kgnet.models.head_registry`.
"""

from __future__ import annotations

import dataclasses
import logging

import torch
from torch import Tensor

from kgnet.config import Config
from kgnet.errors import ConfigError
from kgnet.kg.graph import KnowledgeGraph
from kgnet.models.backbone import Backbone
from kgnet.models.class_concepts import ClassConcepts, class_concept_matrix, derange_rows, identity_concepts
from kgnet.models.concept_head import ConceptHead
from kgnet.models.controls import apply_graph_control, apply_text_control
from kgnet.kg.text_features import encode_texts
from kgnet.models.graph_encoder import GraphEncoder, local_ids
from kgnet.models.head_registry import HEADS, head_spec
from kgnet.models.heads import MLPHead, PrototypeHead
from kgnet.models.infusion import InfusionBlock
from kgnet.models.kgnet_model import KgnetModel
from kgnet.models.scales import select_view

log = logging.getLogger(__name__)


def _early_stages(config: Config, backbone: Backbone) -> dict[int, int]:
    """Earlier stage index (normalised to >= 0) -> token width, checked against the backbone."""
    info = backbone.feature_info
    stages: dict[int, int] = {}
    for stage in config.knowledge.early_infusion_stages:
        index = stage + len(info) if stage < 0 else stage
        if not 0 <= index < len(info) - 1:
            raise ConfigError(
                f"knowledge.early_infusion_stages: {stage} is not an earlier stage of {backbone.name}, "
                f"whose stages are 0..{len(info) - 1} ({', '.join(i['module'] for i in info)}); "
                "the last one always has an infusion block")
        stages[index] = int(info[index]["num_chs"])
    return stages


#: Each part after the backbone draws its initial weights from its own stream (`_seed_part`),
#: so a model's parts start the same whichever other parts it has.
PARTS = ("backbone", "head", "concept_head", "knowledge")


def _seed_part(seed: int, part: str) -> None:
    torch.manual_seed(seed * 1009 + PARTS.index(part))


def class_concepts(config: Config, graph: KnowledgeGraph, seen: list[int] | None = None) -> ClassConcepts:
    """The concept head's class-concept matrix for `config` (its controls applied).

    Args:
        config: Reads `knowledge.concept_*`, `knowledge.graph_control` and `seed`.
        graph: The class-bound graph.
        seen: Classes with training images: a concept all of them share tells none apart and is
            dropped (None = every class).
    """
    kc = config.knowledge
    if kc.concept_control == "identity":
        return identity_concepts(graph)
    graph = apply_graph_control(graph, kc.graph_control, seed=config.seed)
    concepts = class_concept_matrix(graph, hops=kc.concept_hops, decay=kc.concept_decay,
                                    self_weight=kc.concept_self_weight, classes=seen)
    if kc.concept_control == "permuted":
        concepts = derange_rows(concepts, config.seed)
    return concepts


def create_model(
    config: Config,
    graph: KnowledgeGraph | None = None,
    text_features: Tensor | None = None,
    *,
    num_classes: int | None = None,
    in_chans: int = 3,
    image_size: int | None = None,
    baseline: bool = False,
    seen: list[int] | None = None,
) -> KgnetModel:
    """Build the model `config` describes: the baseline, or knowledge injected from `graph`.

    Args:
        config: Run config; reads `model.*`, `knowledge.*`, `data.image_size` and `seed`.
        graph: The class-bound graph (e.g. `kgnet.kg.build.build_class_graph`); its classes,
            in order, are the model's outputs. Only the baseline may go without one.
        text_features: [graph.num_nodes, D] encoded node texts; None = encode
            `graph.node_texts` with `knowledge.text_model` (cached on disk) when needed.
        num_classes: Outputs; None = the graph's class count (required without a graph).
        in_chans: Image channels (1 for grayscale).
        image_size: Image side length; None = `data.image_size` (ViTs with `small_input`
            need one).
        baseline: Build the baseline whatever `knowledge.scales` says.
        seen: Classes with training images (the concept head drops concepts all of them
            share); None = every class.

    Returns:
        The model, in training mode. With `baseline=True` or `knowledge.scales=[]` it has no
        knowledge parameters at all.

    Raises:
        ConfigError: an unknown backbone, a stage or width the backbone cannot take.
        ValueError: a missing or unbound graph, or a class count that disagrees with it.
    """
    if graph is not None:
        if not graph.class_names:
            raise ValueError("the graph is not bound to any classes (KnowledgeGraph.with_classes)")
        if num_classes is not None and num_classes != len(graph.class_names):
            raise ValueError(f"num_classes={num_classes} but the graph binds {len(graph.class_names)} classes")
        num_classes = len(graph.class_names)
    spec = HEADS["plain"] if baseline else head_spec(config)
    if spec.name != "plain" and graph is None:
        raise ValueError("knowledge.scales is not empty: the model needs the class graph")
    if num_classes is None:
        raise ValueError("give the graph or num_classes")
    mc, kc = config.model, config.knowledge
    view = _graph_view(config, graph, text_features) if spec.graph(kc) else None
    if spec.infusion(kc) and kc.attention_dim % kc.heads:
        raise ConfigError(f"knowledge.attention_dim ({kc.attention_dim}) must be divisible by "
                          f"knowledge.heads ({kc.heads})")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)  # the backbone: the same start in every variant
        backbone = Backbone(
            name=mc.backbone,
            pretrained=mc.pretrained,
            in_chans=in_chans,
            img_size=image_size if image_size is not None else config.data.image_size,
            small_input=mc.small_input,
            output_stride=mc.output_stride,
            patch_size=mc.patch_size,
        )
        mlp = None
        if spec.name in ("plain", "prototype"):
            _seed_part(config.seed, "head")
            mlp = MLPHead(in_dim=backbone.pooled_features, embed_dim=mc.embed_dim, num_classes=num_classes,
                          dropout=mc.dropout)
        matrix = concept_head = None
        if spec.name == "concept":
            matrix = class_concepts(config, graph, seen)
            # the R-GCN's embeddings of the concept nodes, or free vectors
            node_index = (local_ids(view[0].node_ids, matrix.node_ids) if kc.concept_vectors in ("graph", "both")
                          else None)
            _seed_part(config.seed, "concept_head")
            concept_head = ConceptHead(in_dim=backbone.num_features, embed_dim=mc.embed_dim, matrix=matrix,
                                       node_index=node_index, free_vectors=kc.concept_vectors == "both")
        encoder = infusion = None
        stages: dict[int, InfusionBlock] = {}
        if view is not None:
            _seed_part(config.seed, "knowledge")
            view, text = view
            concept_design = spec.name == "concept"
            encoder = GraphEncoder(view=view, text_features=text, dim=mc.embed_dim, rgcn_layers=kc.rgcn_layers,
                                   rgcn_bases=kc.rgcn_bases, dropout=kc.dropout,
                                   # the concept vectors are node embeddings: nodes start
                                   # near-orthogonal, as free vectors would (chosen on validation)
                                   embedding_std=1.0 if concept_design else 0.02,
                                   center_text=concept_design and kc.center_text)
            if spec.infusion(kc):
                # the concept design's infusion starts as the identity (chosen on validation)
                block = dict(node_dim=mc.embed_dim, attn_dim=kc.attention_dim, heads=kc.heads, dropout=kc.dropout,
                             zero_init=concept_design)
                infusion = InfusionBlock(token_dim=backbone.num_features, **block)
                stages = {stage: InfusionBlock(token_dim=width, **block)
                          for stage, width in _early_stages(config, backbone).items()}
    if spec.name == "concept":
        head = concept_head
    elif spec.name == "prototype":
        head = PrototypeHead(mlp=mlp, class_index=encoder.class_index, weight=kc.prototype_weight)
    else:
        head = mlp
    model = KgnetModel(backbone=backbone, head=head, graph_encoder=encoder, infusion=infusion, stage_infusion=stages)
    log.info("created %s (%s head%s%s): %s parameters", "baseline" if spec.name == "plain" else "kgnet",
             spec.name, ", R-GCN" if encoder is not None else "", ", infusion" if infusion is not None else "",
             model.param_counts())
    return model


def _graph_view(config: Config, graph: KnowledgeGraph, text_features: Tensor | None):
    """What the graph encoder reads: the scales' view of `graph` (controls applied) and the
    encoded node texts (None when it reads none)."""
    kc = config.knowledge
    view = select_view(graph, kc.scales)
    if kc.text_control == "off":
        view = dataclasses.replace(view, text_mask=torch.zeros_like(view.text_mask))
    if bool(view.text_mask.any()):
        if text_features is None:
            text_features = encode_texts(graph.node_texts, kc.text_model)
        if text_features.shape[0] != graph.num_nodes:
            raise ValueError(f"text_features has {text_features.shape[0]} rows for {graph.num_nodes} nodes")
        text_features = apply_text_control(text_features, kc.text_control, seed=config.seed)
    else:
        text_features = None
    if view.message_passing:
        view = dataclasses.replace(view, graph=apply_graph_control(view.graph, kc.graph_control, seed=config.seed))
    return view, text_features
