"""`create_model`: a baseline or knowledge-injected `KgnetModel` from a `Config` and a graph.

Weights are initialised from `config.seed` inside a forked RNG (the caller's random state is
left alone), backbone first and head second, so a baseline and a knowledge-injected model
built from the same config start with the same backbone and head weights.
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
from kgnet.models.heads import MLPHead
from kgnet.models.injection import KnowledgeInjection
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


#: Each part of a model draws its initial weights from its own stream (`_seed_part`), so a
#: model's parts start the same whichever other parts it has.
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
    use_knowledge = not baseline and bool(config.knowledge.scales)
    if use_knowledge and graph is None:
        raise ValueError("knowledge.scales is not empty: the model needs the class graph")
    if num_classes is None:
        raise ValueError("give the graph or num_classes")
    mc, kc = config.model, config.knowledge
    concepts = use_knowledge and kc.head == "concept"
    graph_part = use_knowledge and (not concepts or kc.concept_vectors == "graph" or kc.concept_infusion)
    view = select_view(graph, kc.scales) if graph_part else None
    if view is not None and kc.text_control == "off":
        view = dataclasses.replace(view, text_mask=torch.zeros_like(view.text_mask))
    if view is not None and bool(view.text_mask.any()):
        if text_features is None:
            from kgnet.kg.text_features import encode_texts

            text_features = encode_texts(graph.node_texts, kc.text_model)
        if text_features.shape[0] != graph.num_nodes:
            raise ValueError(f"text_features has {text_features.shape[0]} rows for {graph.num_nodes} nodes")
        text_features = apply_text_control(text_features, kc.text_control, seed=config.seed)
    if view is not None and view.message_passing:
        view = dataclasses.replace(view, graph=apply_graph_control(view.graph, kc.graph_control, seed=config.seed))
    if view is not None and kc.attention_dim % kc.heads:
        raise ConfigError(f"knowledge.attention_dim ({kc.attention_dim}) must be divisible by "
                          f"knowledge.heads ({kc.heads})")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        backbone = Backbone(
            name=mc.backbone,
            pretrained=mc.pretrained,
            in_chans=in_chans,
            img_size=image_size if image_size is not None else config.data.image_size,
            small_input=mc.small_input,
            output_stride=mc.output_stride,
            patch_size=mc.patch_size,
        )
        _seed_part(config.seed, "head")
        head = MLPHead(in_dim=backbone.pooled_features, embed_dim=mc.embed_dim, num_classes=num_classes,
                       dropout=mc.dropout)
        stages: dict[int, int] = {}
        knowledge = concept_head = matrix = None
        if concepts:
            matrix = class_concepts(config, graph, seen)
            _seed_part(config.seed, "concept_head")
            concept_head = ConceptHead(in_dim=backbone.num_features, embed_dim=mc.embed_dim, weights=matrix.weights,
                                       free_concepts=kc.concept_vectors == "free")
        if view is not None:
            stages = _early_stages(config, backbone)
            _seed_part(config.seed, "knowledge")
            knowledge = KnowledgeInjection(
                view=view,
                text_features=text_features,
                token_dim=backbone.num_features,
                stage_dims=stages,
                dim=mc.embed_dim,
                attn_dim=kc.attention_dim,
                heads=kc.heads,
                rgcn_layers=kc.rgcn_layers,
                rgcn_bases=kc.rgcn_bases,
                dropout=kc.dropout,
                # the concept vectors are node embeddings: nodes start near-orthogonal (as free
                # vectors would) and the infusion starts as the identity (chosen on validation)
                **(dict(embedding_std=1.0, zero_init=True) if concepts else {}),
            )
    model = KgnetModel(backbone=backbone, head=head, knowledge=knowledge,
                       prototype_weight=kc.prototype_weight, early_stages=tuple(stages),
                       concept_head=concept_head, class_concepts=matrix,
                       concept_infusion=bool(concepts and kc.concept_infusion))
    kind = "kgnet (concept head)" if concept_head else "kgnet" if knowledge else "baseline"
    log.info("created %s: %s parameters", kind, model.param_counts())
    return model
