"""`create_model`: the model of a variant, composed of its registered parts, from a `Config` and a graph.

A variant (`kgnet.variants`) names its parts; `parts_of` looks each up in the registry
(`kgnet.models.registry.PARTS`) and fills the slots it leaves out with the empty parts
(`NoGraphEncoder`, `NoInfusion`). Each part then builds itself from the `Plan`: the run's
config, the backbone, the class count and the `Knowledge` (the class graph with the variant's
control applied wherever a part reads it). No part is tested by name here.

Weights are initialised from `config.seed` inside a forked RNG (the caller's random state is
left alone): the backbone from the seed itself, every other part from its own random stream
(`RandomStreams`), so a baseline and a knowledge-injected model built from the same config
start with the same backbone, and a part starts the same whichever other parts the model has.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from kgnet.config import Config
from kgnet.kg.graph import KnowledgeGraph
from kgnet.kg.text_features import encode_texts
from kgnet.models.backbone import Backbone
from kgnet.models.class_concepts import ClassConcepts, class_concept_matrix
from kgnet.models.controls import CONTROLS, Control
from kgnet.models.graph_encoder import NoGraphEncoder
from kgnet.models.heads import Head
from kgnet.models.infusion import NoInfusion
from kgnet.models.kgnet_model import KgnetModel
from kgnet.models.node_vectors import NodeVectors
from kgnet.models.registry import PARTS
from kgnet.models.scales import KnowledgeView, select_view
from kgnet.variants import VARIANTS, Variant

log = logging.getLogger(__name__)

#: The model's slots, in the order their parts are built, and what fills a slot a variant leaves out.
EMPTY_SLOTS: dict[str, Any] = {"head": None, "graph_encoder": NoGraphEncoder, "infusion": NoInfusion}
#: The random streams parts draw their first weights from (a part's `stream`); the backbone
#: draws from the seed itself.
STREAMS = ("backbone", "head", "concept_head", "knowledge")


class RandomStreams:
    """One random stream per name: a part built in a stream continues where the stream's last part
    stopped, so a part's first weights depend on its stream alone (the infusion follows the graph
    encoder in the `knowledge` stream), whichever other parts the model has."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.states: dict[str, Tensor] = {}

    def build(self, part: Any, plan: Plan) -> torch.nn.Module:
        """`part.build(plan)` drawing from `part.stream`."""
        state = self.states.get(part.stream)
        if state is None:
            torch.manual_seed(self.seed * 1009 + STREAMS.index(part.stream))
        else:
            torch.set_rng_state(state)
        module = part.build(plan)
        self.states[part.stream] = torch.get_rng_state()
        return module


@dataclass
class Knowledge:
    """The class graph as one variant sees it: its control applied wherever a part reads it.

    Attributes:
        graph: The class-bound graph (its classes, in order, are the model's outputs).
        text_features: [graph.num_nodes, D] encoded node texts; None = encoded with `text_model`
            (cached on disk) when a part reads them.
        text_model: The sentence encoder of the node texts.
        control: The variant's control.
        seed: The seed of the control's random choices.
        seen: Classes with training images (a concept all of them share is dropped); None = all.
        trained: The classes a trained model had, in its order, when `graph` is an edited ontology
            with more (`kgnet.engine.extend`): a control keeps what it did to them.
    """

    graph: KnowledgeGraph
    text_features: Tensor | None
    text_model: str
    control: Control
    seed: int
    seen: list[int] | None = None
    trained: list[str] | None = None
    _views: dict = field(default_factory=dict, repr=False)

    def class_concepts(self, *, hops: int, decay: float, self_weight: float) -> ClassConcepts:
        """The concept head's class-concept matrix (`kgnet.models.class_concepts`), control applied."""
        build = functools.partial(class_concept_matrix, hops=hops, decay=decay, self_weight=self_weight,
                                  classes=self.seen)
        return self.control.class_concepts(self.graph, build, seed=self.seed, trained=self.trained)

    def encoder_view(self, scales: tuple[str, ...]) -> tuple[KnowledgeView, Tensor | None]:
        """What the graph encoder reads with `scales` on: the view (control applied to its edges and
        text mask) and the encoded texts of the full graph (control applied; None when it reads none)."""
        if scales not in self._views:
            self._views[scales] = self._encoder_view(scales)
        return self._views[scales]

    def _encoder_view(self, scales: tuple[str, ...]) -> tuple[KnowledgeView, Tensor | None]:
        view = select_view(self.graph, scales)
        view = dataclasses.replace(view, text_mask=self.control.text_mask(view.text_mask),
                                   graph=self.control.edges(view.graph, seed=self.seed))
        if not bool(view.text_mask.any()):
            return view, None
        texts = self.text_features
        if texts is None:
            texts = encode_texts(self.graph.node_texts, self.text_model)
        if texts.shape[0] != self.graph.num_nodes:
            raise ValueError(f"text_features has {texts.shape[0]} rows for {self.graph.num_nodes} nodes")
        return view, self.control.texts(texts, seed=self.seed)


@dataclass
class Plan:
    """What a part builds itself from (its `build(plan)`).

    Attributes:
        config: The run's config (a part reads its own sections and `model.embed_dim`).
        backbone: The backbone it is composed with.
        num_classes: The model's outputs.
        head: The head class of the composition (how the node embeddings it reads should start).
        scales: The knowledge scales the graph encoder reads.
        knowledge: The class graph as the variant sees it.
        nodes: Where the heads' per-node vectors come from (`kgnet.models.node_vectors`).
    """

    config: Config
    backbone: Backbone
    num_classes: int
    head: type[Head]
    scales: tuple[str, ...]
    knowledge: Knowledge
    nodes: NodeVectors | None = None


def parts_of(variant: Variant) -> dict[str, Any]:
    """slot -> the part class that fills it in `variant` (the empty parts where it has none).

    Raises:
        ValueError: a composition that cannot work (no head or two, a head or an infusion that
            needs node embeddings without a graph encoder, a control none of its parts reads).
    """
    slots = dict(EMPTY_SLOTS)
    for name in variant.parts:
        part = PARTS[name]
        if slots[part.slot] not in (None, EMPTY_SLOTS[part.slot]):
            raise ValueError(f"{variant.name}: two parts fill the {part.slot} slot ({slots[part.slot].name}, {name})")
        slots[part.slot] = part
    if slots["head"] is None:
        raise ValueError(f"{variant.name}: no head among its parts {variant.parts}")
    needs = [name for name in variant.parts if PARTS[name].needs_graph_encoder]
    if needs and slots["graph_encoder"] is NoGraphEncoder:
        raise ValueError(f"{variant.name}: {', '.join(needs)} reads node embeddings, but it has no graph_encoder")
    CONTROLS[variant.control]().check(set().union(*(part.knowledge for part in slots.values())), variant.name)
    return slots


def graph_hops(config: Config, variant: Variant) -> int:
    """How far the variant's class graph must reach around the classes: the most any of its parts asks."""
    return max(part.graph_hops(config) for part in parts_of(variant).values())


def reads_ontology(config: Config, variant: Variant) -> bool:
    """Whether a part of the variant reads the class graph (the baseline's MLP head does not)."""
    return graph_hops(config, variant) > 0


def reads_text(config: Config, variant: Variant) -> bool:
    """Whether the variant reads node texts (so the run encodes them)."""
    return parts_of(variant)["graph_encoder"].reads_text(config, variant)


def create_model(
    config: Config,
    graph: KnowledgeGraph | None = None,
    text_features: Tensor | None = None,
    *,
    variant: str | Variant = "kgnet",
    num_classes: int | None = None,
    in_chans: int = 3,
    image_size: int | None = None,
    seen: list[int] | None = None,
    trained: list[str] | None = None,
) -> KgnetModel:
    """Build variant `variant`'s model: the baseline, or knowledge injected from `graph`.

    Args:
        config: Run config; each part reads its own sections, the backbone `model.*`, and
            `data.image_size` and `seed`.
        graph: The class-bound graph (e.g. `kgnet.kg.build.build_class_graph`); its classes,
            in order, are the model's outputs. Only a variant without knowledge (the baseline)
            may go without one.
        text_features: [graph.num_nodes, D] encoded node texts; None = encode `graph.node_texts`
            with `graph_encoder.text_model` (cached on disk) when a part reads them.
        variant: A registered variant's name, or a `Variant`.
        num_classes: Outputs; None = the graph's class count (required without a graph).
        in_chans: Image channels (1 for grayscale).
        image_size: Image side length; None = `data.image_size` (ViTs with `small_input`
            need one).
        seen: Classes with training images (the concept head drops concepts all of them
            share); None = every class.
        trained: The classes of the trained model whose weights the new one takes after its
            ontology was edited (`kgnet.engine.extend`), in that model's order; None = a new model.

    Returns:
        The model, in training mode.

    Raises:
        ConfigError: an unknown backbone, a stage or width the backbone cannot take.
        ValueError: a missing or unbound graph, or a class count that disagrees with it.
    """
    variant = VARIANTS[variant] if isinstance(variant, str) else variant
    slots = parts_of(variant)
    if graph is not None:
        if not graph.class_names:
            raise ValueError("the graph is not bound to any classes (KnowledgeGraph.with_classes)")
        if num_classes is not None and num_classes != len(graph.class_names):
            raise ValueError(f"num_classes={num_classes} but the graph binds {len(graph.class_names)} classes")
        num_classes = len(graph.class_names)
    elif reads_ontology(config, variant):
        raise ValueError(f"{variant.name} reads the ontology: the model needs the class graph")
    if num_classes is None:
        raise ValueError("give the graph or num_classes")
    mc = config.model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)  # the backbone: the same start in every variant
        backbone = Backbone(name=mc.backbone, pretrained=mc.pretrained, pretrained_file=mc.pretrained_file,
                            in_chans=in_chans,
                            img_size=image_size if image_size is not None else config.data.image_size,
                            small_input=mc.small_input, output_stride=mc.output_stride, patch_size=mc.patch_size)
    knowledge = Knowledge(graph, text_features, config.graph_encoder.text_model, CONTROLS[variant.control](),
                          config.seed, seen, trained)
    plan = Plan(config, backbone, num_classes, slots["head"], tuple(variant.value(config, "graph_encoder.scales")),
                knowledge)
    plan.nodes = slots["graph_encoder"].node_vectors(plan)  # any text is encoded here, outside the streams
    with torch.random.fork_rng(devices=[]):
        streams = RandomStreams(config.seed)
        parts = {slot: streams.build(part, plan) for slot, part in slots.items()}
    model = KgnetModel(backbone=backbone, variant=variant.name, **parts)
    log.info("created %s (%s): %s parameters", variant.name, ", ".join(variant.parts), model.param_counts())
    return model
