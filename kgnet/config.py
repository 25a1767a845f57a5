"""kgnet's typed configuration: every setting of a run, with its default, type and one-line doc.

Every CLI reads its settings the same way: the defaults here, then `--config FILE.yaml`, then
each `--set a.b=c`. A mistake is caught before any data loads, as one `ConfigError` naming the
file and line (or the `--set` argument) and the closest valid key. Each run folder saves the
resolved config, which loads back to an equal `Config`, and `docs/config.md` is generated
from these dataclasses (`python -m kgnet.config_docs > docs/config.md`), so it cannot drift.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import math
import re
import stat
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, ClassVar, Literal, Mapping, Sequence, Union

import yaml

from kgnet.atomic import write_text_atomic
from kgnet.cli import path_argument
from kgnet.errors import ConfigError

Scale = Literal["category", "relation", "wide"]
#: The knowledge scales, in order (`kgnet.models.scales` says what each lets the graph encoder read).
SCALES: tuple[str, ...] = typing.get_args(Scale)

#: Value bounds a field may declare (`_field(..., bounds=...)`), by the words used in messages.
BOUNDS: dict[str, Callable[[float], bool]] = {
    "> 0": lambda v: v > 0,
    ">= 0": lambda v: v >= 0,
    "in [0, 1)": lambda v: 0 <= v < 1,
    "in [0, 1]": lambda v: 0 <= v <= 1,
    "non-empty": lambda v: len(v) > 0,
}

#: A whole-number setting lies within +-(INT_LIMIT - 1) unless its field says otherwise: sizes,
#: counts and seeds that torch, numpy and itertools take on every platform. Every float setting
#: must also be finite (`.inf`, `.nan` and `1e999` are errors).
INT_LIMIT = 2**31


def _field(default: Any, doc: str, bounds: str | None = None, *,
           minimum: int | None = None, maximum: int | None = None) -> Any:
    """A dataclass field whose one-line doc and bounds live in `metadata`, for checks and docs.

    `minimum` and `maximum` are the inclusive range of an integer setting; without them it is
    what `bounds` implies (`> 0`: from 1) up to `INT_LIMIT - 1`.
    """
    metadata = {"help": doc, "bounds": bounds, "minimum": minimum, "maximum": maximum}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    if dataclasses.is_dataclass(default):
        return field(default_factory=type(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class DataConfig:
    """Which images, how many of them per class, and which classes are held out."""

    name: Literal["fashion_mnist", "cifar10", "cifar100", "imagefolder"] = _field(
        "fashion_mnist", "Data set; `imagefolder` reads one sub-folder per class under `root`.")
    root: str | None = _field(None, "Folder holding the data set's files; null = its default location.")
    classes: list[str] | None = _field(
        None, "The data set's classes to train and score on (at least 2), named as it names them (an image folder: "
        "class or folder names); the others' images are left out everywhere, the labels become 0..n-1 in the data "
        "set's order, and the ontology binds only these. null = every class.")
    samples_per_class: int | None = _field(
        5, "Training images kept per class; null = all. The default, 5, is the embedded demo's few-shot "
        "regime, where the knowledge pays (docs/benchmarks.md); set null to train on every image.", "> 0")
    held_out_classes: list[str] = _field([], "Classes kept out of training and evaluated zero-shot.")
    novel_classes: list[str] = _field(
        [], "Classes trained on only data.novel_samples_per_class images each while the others (the base classes) "
        "keep data.samples_per_class: the generalised few-shot setting, where knowledge learned on the base classes "
        "should carry over. metrics.json then has novel_top1, base_top1 and gfsl_harmonic.")
    novel_samples_per_class: int = _field(1, "Training images of each of data.novel_classes.", "> 0",
                                          maximum=1_000_000)
    test_per_class: int | None = _field(
        None, "Test images scored per class: a fixed stratified subset, the same for every seed and variant "
        "(cheaper scoring for many short runs); null = the whole test split.", "> 0")
    score_split: Literal["test", "validation"] = _field(
        "test", "Images metrics.json scores: `test` (the official test split, for reporting) or `validation` (the "
        "validation split plus the held-out classes' share of it, never trained on: for choosing designs and "
        "settings without touching the test split).")
    val_fraction: float = _field(0.1, "Fraction of the training split held back for validation.", "in [0, 1)")
    image_size: int | None = _field(None, "Side length images are resized to (8-4096 px); null = the native size of Fashion-MNIST (28) and CIFAR (32), and 64 px "
        "for an image folder (photos have no common size; set 128-224 on a GPU).", "> 0", minimum=8, maximum=4096)
    num_workers: int = _field(0, "DataLoader worker processes; 0 loads in the main process.", ">= 0",
                              maximum=256)
    download: bool = _field(False, "Fetch a missing fashion_mnist/cifar10/cifar100 with torchvision (needs internet); never implied.")
    augment: bool = _field(True, "Augment the training split (shifted crops, flips).")
    augment_pad: int | None = _field(
        None, "Shifted-crop padding in pixels (with flips) of the in-memory data sets; null = the data set's "
        "default (CIFAR 4, Fashion-MNIST 2); 0 = no crops or flips.", ">= 0")
    verify: bool = _field(False, "Decode every image-folder file before training and list all unreadable ones.")


@dataclass
class ModelConfig:
    """The image backbone and the feature size shared with the knowledge encoder."""

    backbone: str = _field("resnet10t", "Any timm model name (the default is a small ResNet that trains the embedded default on a CPU in minutes).")
    pretrained: bool = _field(False, "Start from timm's pretrained weights (timm's cache, else downloaded) and "
                              "their normalisation; releases load without them.")
    pretrained_file: str | None = _field(
        None, "A local file of the backbone's pretrained weights (.safetensors, .pth, .bin), loaded through timm's "
        "`pretrained_cfg_overlay=dict(file=...)` (nothing is fetched), with timm's normalisation of those weights.")
    init_from: str | None = _field(
        None, "Start from a trained run: a release folder (RUN/VARIANT), or a run folder (RUN: its release of the "
        "variant being trained). Every part whose shape still fits is loaded, rows of ontology nodes and classes "
        "by IRI and name; new classes, nodes and parts are built fresh (`kgnet.models.transfer`).")
    small_input: bool = _field(True, "Reduced-stride stem for 28-32 px images, so they keep spatial detail.")
    embed_dim: int = _field(256, "Width of the pooled image feature and of the knowledge embeddings.", "> 0")
    output_stride: int | None = _field(
        None, "CNN output stride where timm supports it; 4 = timm's 8 with the stem max-pool dropped; "
        "null = 4 with small_input (7x7 tokens at 28 px, a map that can locate a part), else the model's; "
        "16 gives 2x2 tokens at about half the cost.", "> 0")
    patch_size: int | None = _field(
        None, "ViT patch size; null = about image_size / 7 with small_input (28 px -> 4), else the model's.", "> 0", maximum=1024)


@dataclass
class KnowledgeConfig:
    """The ontology and how it binds to the classes: read by every variant with a knowledge part,
    and by the hierarchy-aware metrics of every run (the baseline's too)."""

    ontology: str | None = _field(None, "RDF file describing the classes; null = the data set's shipped one.")
    format: str | None = _field(None, "RDF serialisation (turtle, xml, nt, json-ld, ...); null = by suffix.")
    imports: list[str] = _field([], "Local files satisfying the ontology's owl:imports (nothing is fetched).")
    class_map: str | None = _field(
        None, "File mapping each class to a KG node; null = bind by predicate, WordNet id or label.")
    class_predicate: str | None = _field(
        None, "Ontology predicate giving a node's class index, e.g. `urn:kgnet:classIndex`.")


# The sections of the model's parts: each is read by one registered part of `kgnet.models` (the
# part's `sections`), and a run whose variants have no such part refuses a setting of it.


@dataclass
class MLPHeadConfig:
    """The baseline's head: the backbone's pooling, a hidden layer of `model.embed_dim`, a classifier.
    Read by `baseline` and (inside the prototype head) `kgnet-prototype`."""

    dropout: float = _field(0.1, "Dropout before the classifier layer.", "in [0, 1)")


@dataclass
class ConceptHeadConfig:
    """Class scores as exact sums of ontology-concept activations. Read by `kgnet` and every
    `kgnet-composed` variant."""

    hops: int = _field(3, "Concepts within this many hops along the ontology's edges (class -> superclass, "
                       "class -> part) belong to a class.", "> 0", maximum=64)
    decay: float = _field(0.7, "A concept d hops from its class weighs decay^(d-1) before each class's weights are "
                          "normalised to sum 1.", "> 0")
    self_weight: float = _field(
        0.0, "Weight of each class's own node as a concept of its own (the knowledge-free part); 0 = every class "
        "is scored through shared concepts only.", "in [0, 1]")


@dataclass
class GraphEncoderConfig:
    """The R-GCN over the class graph and its node text (node embeddings trained end to end). Read
    by `kgnet-composed` (its node embeddings are the concept vectors) and `kgnet-prototype`."""

    scales: list[Scale] = _field(
        ["category", "relation", "wide"],
        "Knowledge scales the encoder reads: class text, relations among classes, wide concepts "
        "(`kgnet.models.scales`); a variant that ablates a scale fixes this itself. The variant without any "
        "knowledge is `baseline`.", "non-empty")
    hops: int = _field(2, "Concepts within this many hops of a class enter the encoder's graph.", ">= 0",
                       maximum=64)
    text_model: str = _field("all-MiniLM-L6-v2", "Sentence encoder for node labels and definitions.")
    layers: int = _field(2, "R-GCN layers.", "> 0", maximum=64)
    bases: int = _field(8, "Basis matrices shared by the R-GCN's relation weights.", "> 0", maximum=4096)
    dropout: float = _field(0.1, "Dropout in the R-GCN.", "in [0, 1)")
    lr_scale: float = _field(1.0, "Learning rate of the encoder as a multiple of train.lr.", "> 0")
    correction_decay: float = _field(
        1.0, "Weight decay of the per-node corrections of an inductive encoder (`kgnet-inductive`: node inputs "
        "from text and neighbours, plus a correction that starts at zero), so the graph predicts and the data "
        "corrects.", ">= 0")


@dataclass
class InfusionConfig:
    """Cross-attention of the visual tokens over the node embeddings. Read by `kgnet-composed` and
    `kgnet-prototype`."""

    heads: int = _field(4, "Attention heads.", "> 0", maximum=1024)
    attention_dim: int = _field(
        64, "Width of the cross-attention and its MLP (small keeps inference near the baseline's); a multiple of "
        "infusion.heads.", "> 0", maximum=65536)
    dropout: float = _field(0.1, "Dropout on the attention output and inside the MLP.", "in [0, 1)")
    early_stages: list[int] = _field(
        [], "Earlier backbone stages (indices into timm's feature_info) that also get an infusion block.")


@dataclass
class PrototypeHeadConfig:
    """The paper's head: (1 - w) MLP + w scaled cosine to the class nodes, trained with an alignment
    stage first. Read by `kgnet-prototype` and its scale ablations."""

    weight: float = _field(0.5, "w, the prototype logits' share; 1 = prototypes only.", "in [0, 1]")
    align_epochs: int = _field(
        1, "The first of train.epochs that train the alignment alone (each image embedding pulled towards its "
        "class node's embedding); the rest add it to the cross-entropy with align_weight.", ">= 0",
        maximum=100_000)
    align_weight: float = _field(0.1, "Weight of the alignment term after the alignment epochs.", ">= 0")
    temperature: float = _field(0.1, "Temperature of the contrastive alignment.", "> 0")


@dataclass
class TrainConfig:
    """Optimisation: the same epochs, batches and schedule for every variant."""

    epochs: int = _field(3, "Training epochs, the same for every variant (a head with an alignment stage spends its "
                         "first prototype_head.align_epochs of them on it).", ">= 0", maximum=100_000)
    batch_size: int = _field(25, "Images per optimiser step, split evenly across processes under torchrun "
                             "(the default suits the 5-image demo; 128 or more for full data sets).", "> 0",
                             maximum=2**20)
    lr: float = _field(5e-4, "Peak learning rate (AdamW; linear warm-up, cosine decay); the default was chosen on "
                       "validation for few images per class, 2e-3 suits full Fashion-MNIST.", "> 0")
    weight_decay: float = _field(0.05, "Weight decay.", ">= 0")
    backbone_lr_scale: float = _field(
        1.0, "Learning rate of the backbone as a multiple of train.lr; 0 freezes it (its weights and its batch-norm "
        "statistics), so only the head and the knowledge parts learn: with model.init_from, the image features the "
        "trained classes rest on stay as they were while new classes are added.", ">= 0")
    balanced_sampling: bool = _field(
        True, "When classes have different numbers of training images: each epoch draws its images with "
        "replacement so every class is equally likely (rare classes repeated, differently augmented); every variant "
        "alike. Equal counts are unaffected.")
    logit_adjust_tau: float = _field(
        1.0, "When classes have different numbers of training images (data.novel_classes, an imbalanced image "
        "folder): the cross-entropy adds tau x log(class share) to the logits (logit-adjusted loss, Menon et al. "
        "2021), so rare classes still get predicted; every variant alike. 0 = plain cross-entropy; equal counts "
        "are unaffected.", ">= 0", maximum=100)
    device: str = _field("auto", "`cpu`, `cuda`, `cuda:N`, or `auto` (a GPU when there is one).")
    # Off by default: on CPUs without native bf16 (AVX512-BF16 / AMX) autocast is slower than fp32.
    amp: bool = _field(False, "Train under bf16 autocast (mixed precision; a GPU from Ampere on, or a CPU); "
                       "evaluation stays fp32. Recorded in metrics.json.")
    val_images: int | None = _field(
        1000, "Validation images scored after each epoch for the log's val top-1: a class-stratified sample, the "
        "same every epoch (all 6,000 of the default split took 12 s an epoch on 2 CPU cores, the demo's epoch "
        "trains in 16 s); null = the whole validation split. The number shows the trend; where validation decides something (GZSL "
        "calibration, data.score_split=validation) the whole split is scored.", "> 0")
    min_steps: int = _field(
        250, "Fewest optimiser steps a run takes: when the epochs over a small training set give fewer, each "
        "epoch passes over the set several times (differently augmented), so few images per class still learn.",
        ">= 0", maximum=10_000_000)
    compile: bool = _field(False, "Compile the model's training forward with `torch.compile` (the first steps "
                           "take longer while it compiles; needs a C compiler on CPU). Recorded in metrics.json.")
    analysis: Literal["tsne", "pca", "none"] = _field(
        "tsne", "End-of-run analysis of the test split (confusion figures, embedding projection and silhouettes) "
        "with this projection; `none` skips it (metrics.json keeps accuracy, calibration, hierarchy, zero-shot).")
    gzsl_calibration: Literal["pseudo-unseen", "none"] = _field(
        "pseudo-unseen", "With `data.held_out_classes`: how the constant subtracted from the seen classes' logits "
        "before choosing among all classes (calibrated stacking, Chao et al. 2016) is chosen. `pseudo-unseen` trains "
        "each variant a second time with as many seen classes held out as well (a seeded choice) and takes the "
        "constant that maximises the GZSL harmonic mean on the validation split, where those classes play unseen "
        "(the test split is never read); it doubles training time. `none`: no constant (gamma 0). Nothing is done "
        "when no class is held out.")


@dataclass
class Config:
    """Everything one run needs; `load_config` builds it from defaults, a YAML file and `--set`."""

    data: DataConfig = _field(DataConfig(), "Data set settings.")
    model: ModelConfig = _field(ModelConfig(), "Backbone settings.")
    knowledge: KnowledgeConfig = _field(KnowledgeConfig(), "The ontology and its binding to the classes.")
    mlp_head: MLPHeadConfig = _field(MLPHeadConfig(), "The MLP head's settings.")
    concept_head: ConceptHeadConfig = _field(ConceptHeadConfig(), "The concept head's settings.")
    graph_encoder: GraphEncoderConfig = _field(GraphEncoderConfig(), "The graph encoder's settings.")
    infusion: InfusionConfig = _field(InfusionConfig(), "The infusion's settings.")
    prototype_head: PrototypeHeadConfig = _field(PrototypeHeadConfig(), "The prototype head's settings.")
    train: TrainConfig = _field(TrainConfig(), "Optimisation settings.")
    variants: list[str] = _field(["baseline", "kgnet"], "Models trained and compared in this run (names: the Variants section below).")
    # torch.manual_seed takes < 2**64 and the models seed their parts with seed * 1009 + part
    seed: int = _field(0, "Base random seed (each process adds its rank).", minimum=0, maximum=2**32 - 1)
    out: str = _field("runs", "Folder the run folders are written under.")

    #: Where each setting that a file or a `--set` gave came from (dotted key -> "--set KEY=VALUE"
    #: or "FILE line N"), for the check that every setting given is read (`kgnet.engine.settings_read`).
    #: Not a setting: not compared, not saved; a config built in code has none.
    sources: ClassVar[Mapping[str, str]] = MappingProxyType({})


# PyYAML follows YAML 1.1, which kgnet's settings must not: `off`, `no` and `on` are booleans
# there (so `--set x=off` could never name the value 'off'), `1:30` is the integer 90, `010` is 8
# and `1e-3` is a string. kgnet reads scalars as YAML 1.2's core schema does: `true`/`false` are
# the booleans, integers are decimal (or 0o/0x), floats include `1e-3`; everything else is a
# string. The dumper quotes any string that either schema would read as something else, so saved
# configs round-trip.
_BOOL, _INT, _FLOAT = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_YAML12 = {
    _BOOL: (re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")),
    _INT: (re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")),
    _FLOAT: (re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+0123456789.")),
}


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2's core schema for booleans and numbers (see above)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _YAML12]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
for _tag, (_regexp, _first) in _YAML12.items():
    _Loader.add_implicit_resolver(_tag, _regexp, _first)


def _construct_int(loader: yaml.SafeLoader, node: yaml.Node) -> int:
    text = loader.construct_scalar(node)
    sign, digits = (-1, text[1:]) if text[0] == "-" else (1, text.lstrip("+"))
    base = {"0o": 8, "0x": 16}.get(digits[:2], 10)
    return sign * int(digits[2:] if base != 10 else digits, base)


_Loader.add_constructor(_INT, _construct_int)


class _Dumper(yaml.SafeDumper):
    """SafeDumper that also quotes strings `_Loader` would read as booleans or numbers."""


for _tag, (_regexp, _first) in _YAML12.items():
    _Dumper.add_implicit_resolver(_tag, _regexp, _first)
_MAP, _STR, _NULL = "tag:yaml.org,2002:map", "tag:yaml.org,2002:str", "tag:yaml.org,2002:null"
_Dumper.add_representer(  # lists on one line (`scales: [category, wide]`), sections in blocks
    list, lambda dumper, items: dumper.represent_sequence("tag:yaml.org,2002:seq", items, flow_style=True))


def describe_type(tp: Any) -> str:
    """A field type as a user reads it, e.g. `int | null`, `list[str]`, `'none' | 'random'`."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return " | ".join(repr(arg) for arg in args)
    if origin in (Union, types.UnionType):
        return " | ".join(describe_type(arg) for arg in args)
    if origin is list:
        return f"list[{describe_type(args[0])}]"
    return "null" if tp is type(None) else tp.__name__


def config_keys(cls: type = Config, prefix: str = "") -> list[str]:
    """Every valid dotted key of `cls`, sections included (`train`, `train.lr`, ...)."""
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        keys.append(prefix + f.name)
        if dataclasses.is_dataclass(hints[f.name]):
            keys += config_keys(hints[f.name], f"{prefix}{f.name}.")
    return keys


class _Mismatch(Exception):
    """A value that does not fit type `tp`; `index` says where inside a list."""

    def __init__(self, tp: Any, value: Any) -> None:
        super().__init__()
        self.tp, self.value, self.index = tp, value, ""


def _conform(value: Any, tp: Any) -> Any:
    """Return `value` if it has type `tp` (an int becomes a float where a float is expected)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        if any(value == arg and type(value) is type(arg) for arg in args):
            return value
    elif origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arm in (arg for arg in args if arg is not type(None)):
            try:
                return _conform(value, arm)
            except _Mismatch:
                pass
    elif origin is list:
        if isinstance(value, list):
            items = []
            for i, item in enumerate(value):
                try:
                    items.append(_conform(item, args[0]))
                except _Mismatch as err:
                    err.index = f"[{i}]{err.index}"
                    raise
            return items
    elif isinstance(value, bool):  # bool is an int subclass, but `true` is no number
        if tp is bool:
            return value
    elif tp is float and isinstance(value, int):
        return float(value)
    elif isinstance(value, tp):
        return value
    raise _Mismatch(tp, value)


def _got(value: Any) -> str:
    return "null" if value is None else f"{type(value).__name__} {value!r}"


def integer_range(f: dataclasses.Field) -> tuple[int, int]:
    """The inclusive range of the integers field `f` accepts (see `_field`)."""
    implied = {"> 0": 1, ">= 0": 0}.get(f.metadata.get("bounds"), 1 - INT_LIMIT)
    low, high = f.metadata.get("minimum"), f.metadata.get("maximum")
    return (implied if low is None else low), (INT_LIMIT - 1 if high is None else high)


def _takes_integers(tp: Any) -> bool:
    """Whether type `tp` is `int`, `int | null` or `list[int]`."""
    args = [arg for arg in typing.get_args(tp) if arg is not type(None)]
    return tp is int or (typing.get_origin(tp) in (Union, types.UnionType, list) and args == [int])


def _out_of_range(value: Any, f: dataclasses.Field) -> str | None:
    """What is wrong with one conformed value of field `f` whatever its bounds say: an integer
    outside the field's range, or a float that is not finite; None when it fits."""
    if isinstance(value, int) and not isinstance(value, bool):
        low, high = integer_range(f)
        if not low <= value <= high:
            return f"must be an integer between {low} and {high}, got {value}"
    elif isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, got {value}"
    return None


def _check(value: Any, f: dataclasses.Field, tp: Any, key: str, where: str) -> Any:
    """`value` conformed to field `f` of type `tp`, or a ConfigError naming `where` and `key`."""
    try:
        value = _conform(value, tp)
    except _Mismatch as err:
        if typing.get_origin(err.tp) is Literal:
            allowed = ", ".join(repr(arg) for arg in typing.get_args(err.tp))
            problem = f"must be one of {allowed}; got {err.value!r}"
        else:
            problem = f"expected {describe_type(err.tp)}, got {_got(err.value)}"
            if isinstance(err.value, float) and err.value.is_integer() and _takes_integers(tp):
                problem += "; it must be a whole number between {} and {}".format(*integer_range(f))
        raise ConfigError(f"{where}: {key}{err.index} {problem}") from None
    bounds = f.metadata.get("bounds")
    if bounds and value is not None and not BOUNDS[bounds](value):
        raise ConfigError(f"{where}: {key} must be {bounds}, got {value!r}")
    if isinstance(value, list):  # a list setting names each item once (a repeat is a typo, not a weight)
        repeated = next((item for i, item in enumerate(value) if item in value[:i]), None)
        if repeated is not None:
            raise ConfigError(f"{where}: {key} lists {repeated!r} twice; name each once")
    items = [(f"[{i}]", item) for i, item in enumerate(value)] if isinstance(value, list) else [("", value)]
    for index, item in items:
        problem = _out_of_range(item, f)
        if problem:
            raise ConfigError(f"{where}: {key}{index} {problem}")
    return value


#: Settings that moved to the section of the part that reads them (issue 33): old key -> new key(s).
MOVED = {
    "knowledge.scales": "graph_encoder.scales", "knowledge.hops": "graph_encoder.hops",
    "knowledge.text_model": "graph_encoder.text_model", "knowledge.rgcn_layers": "graph_encoder.layers",
    "knowledge.rgcn_bases": "graph_encoder.bases", "knowledge.dropout": "graph_encoder.dropout and infusion.dropout",
    "train.graph_lr_scale": "graph_encoder.lr_scale", "knowledge.heads": "infusion.heads",
    "knowledge.attention_dim": "infusion.attention_dim", "knowledge.early_infusion_stages": "infusion.early_stages",
    "knowledge.concept_hops": "concept_head.hops", "knowledge.concept_decay": "concept_head.decay",
    "knowledge.concept_self_weight": "concept_head.self_weight", "knowledge.prototype_weight": "prototype_head.weight",
    "train.align_weight": "prototype_head.align_weight", "train.temperature": "prototype_head.temperature",
    "train.align_epochs": "prototype_head.align_epochs (train.epochs now counts every epoch: add them)",
    "model.dropout": "mlp_head.dropout",
}
#: Settings that are gone because a variant's composition says it now (issue 33): key -> what to do.
GONE = {
    "knowledge.head": "a variant names its head: choose `variants` (kgnet, kgnet-composed, kgnet-prototype, ...)",
    "knowledge.concept_vectors": "kgnet-composed reads its concept vectors from the R-GCN, kgnet has its own",
    "knowledge.concept_infusion": "the variants with an infusion (kgnet-composed, kgnet-prototype) have one",
    "knowledge.center_text": "the head decides how the node embeddings it reads start",
    "knowledge.concept_control": "controls are variants (kgnet-permuted, kgnet-noknowledge, ...)",
    "knowledge.graph_control": "controls are variants (kgnet-shuffled, kgnet-empty)",
    "knowledge.text_control": "controls are variants (kgnet-randomtext, kgnet-no-text)",
}


def _unknown_key(key: str, section: str, siblings: Sequence[str], where: str) -> ConfigError:
    """The error for an unknown key: where it moved, or the closest valid key anywhere in the config."""
    if key in MOVED:
        return ConfigError(f"{where}: '{key}' is now '{MOVED[key]}', in the section of the part that reads it")
    if key in GONE:
        return ConfigError(f"{where}: '{key}' is no longer a setting: {GONE[key]}")
    keys, leaf = config_keys(), key.rsplit(".", 1)[-1]
    if section:  # the section is valid, so only the last name can be misspelt
        close = [f"{section}.{m}" for m in difflib.get_close_matches(leaf, siblings, n=1)]
    else:
        close = difflib.get_close_matches(key, keys, n=1, cutoff=0.75)
    if not close:  # a right name in the wrong section, e.g. `lr` for `train.lr`
        by_leaf = {k.rsplit(".", 1)[-1]: k for k in keys}
        close = [by_leaf[m] for m in difflib.get_close_matches(leaf, by_leaf, n=1, cutoff=0.8)]
    hint = (f"did you mean '{close[0]}'?" if close
            else f"valid keys{f' in {section!r}' if section else ''}: {', '.join(siblings)}")
    return ConfigError(f"{where}: unknown key '{key}' ({hint})")


def _construct(node: yaml.Node, where: Callable[[yaml.Node], str]) -> Any:
    try:
        return _Loader("").construct_object(node, deep=True)
    except yaml.YAMLError as err:
        raise _yaml_error(err, where(node), mark_line=False) from None
    except RecursionError:
        raise ConfigError(f"{where(node)}: nested too deeply to be a setting") from None


def _yaml_error(err: yaml.YAMLError, source: str, mark_line: bool) -> ConfigError:
    """One line for a YAML error: `source` (plus the line where yaml marked it) and the problem."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    context, context_mark = getattr(err, "context", None), getattr(err, "context_mark", None)
    if mark_line and context and context_mark and context_mark.line != mark.line:
        context += f" (from line {context_mark.line + 1})"  # e.g. where an unclosed `[` opened
    problem = ", ".join(filter(None, (context, getattr(err, "problem", None))))
    at = f"{source} line {mark.line + 1}" if mark_line and mark else source
    return ConfigError(f"{at}: malformed YAML: {problem or err}")


def _merge(obj: Any, node: yaml.Node, prefix: str, where: Callable[[yaml.Node], str], given: dict[str, str]) -> None:
    """Set fields of dataclass `obj` from mapping `node`, recursing into sections, checking each
    value; `given` records where each setting came from (a setting given twice in one file, as
    `train.lr: ...` and in a `train:` section, is an error)."""
    if not isinstance(node, yaml.MappingNode):
        section = f"'{prefix[:-1]}'" if prefix else "the top level"
        raise ConfigError(f"{where(node)}: {section} must be a mapping of keys to values, "
                          f"got {_got(_construct(node, where))}")
    fields = {f.name: f for f in dataclasses.fields(obj)}
    hints = typing.get_type_hints(type(obj))
    seen: set[str] = set()
    for key_node, value_node in node.value:
        key = str(_construct(key_node, where))
        name, _, rest = key.partition(".")  # `train.lr: 0.1` means `train: {lr: 0.1}`
        if name not in fields or (rest and not dataclasses.is_dataclass(hints[name])):
            raise _unknown_key(prefix + key, prefix[:-1], list(fields), where(key_node))
        if key in seen:
            raise ConfigError(f"{where(key_node)}: key '{prefix + key}' is set twice")
        seen.add(key)
        if rest:
            inner = yaml.ScalarNode(_STR, rest, key_node.start_mark, key_node.end_mark)
            value_node = yaml.MappingNode(_MAP, [(inner, value_node)])
        if dataclasses.is_dataclass(hints[name]):
            _merge(getattr(obj, name), value_node, f"{prefix}{name}.", where, given)
        else:
            if prefix + name in given:
                raise ConfigError(f"{where(key_node)}: key '{prefix + name}' is set twice (also at {given[prefix + name]})")
            value = _construct(value_node, where)
            setattr(obj, name, _check(value, fields[name], hints[name], prefix + name, where(value_node)))
            given[prefix + name] = where(value_node)


def _compose(text: str, source: str, mark_line: bool) -> yaml.Node | None:
    """Parse YAML `text` into a node tree (None when empty), keeping line marks for messages."""
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    except yaml.YAMLError as err:
        raise _yaml_error(err, source, mark_line) from None
    except RecursionError:
        raise ConfigError(f"{source}: malformed YAML: nested too deeply to be a config") from None
    finally:
        loader.dispose()


#: The largest config file read (a config is a few kB; a larger file is not one).
MAX_CONFIG_BYTES = 1 << 20


def _merge_file(config: Config, path: Path) -> None:
    """Apply the settings of YAML file `path` to `config` (a regular file of at most `MAX_CONFIG_BYTES`:
    a FIFO would block forever, /dev/zero fill the memory)."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise ConfigError(f"{path}: not a regular file (a folder, a pipe or a device); give a YAML file")
        with open(path, "rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES:,} bytes, which no config file is; give the "
                              "YAML file of settings")
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ConfigError(f"{path}: cannot read config file: {err}") from None
    node = _compose(text, str(path), mark_line=True)
    if node is not None:  # an empty file keeps the defaults
        given: dict[str, str] = {}
        _merge(config, node, "", lambda n: f"{path} line {n.start_mark.line + 1}", given)
        config.sources = {**config.sources, **given}


def _apply_override(config: Config, arg: str) -> None:
    """Apply one `--set a.b=c` argument, the value read as YAML."""
    key, sep, text = arg.partition("=")
    source = f"--set {arg}"
    if not sep or not key.strip():
        raise ConfigError(f"{source}: expected KEY=VALUE, e.g. --set train.lr=0.01")
    value = _compose(text, source, mark_line=False) or yaml.ScalarNode(_NULL, "")
    root = yaml.MappingNode(_MAP, [(yaml.ScalarNode(_STR, key.strip()), value)])
    given: dict[str, str] = {}
    _merge(config, root, "", lambda _node: source, given)
    config.sources = {**config.sources, **given}


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """Build a `Config`: defaults, then the YAML file at `path`, then each `a.b=c` override.

    Args:
        path: YAML file of settings (nested sections or dotted keys); None = defaults only.
        overrides: `key=value` strings, applied in order; values are read as YAML
            (`true`, `3`, `1e-3`, `[a, b]`, `null`).

    Returns:
        The resolved, type-checked config.

    Raises:
        ConfigError: unreadable or malformed file, unknown key, wrong type or out-of-range value.
    """
    config = Config()
    if path is not None:
        _merge_file(config, Path(path))
    for arg in overrides:
        _apply_override(config, arg)
    check_together(config)
    return config


def check_together(config: Config) -> None:
    """ConfigError for settings that are each valid but cannot go together."""
    data = config.data
    if data.novel_classes and data.samples_per_class is not None and \
            data.novel_samples_per_class > data.samples_per_class:
        raise ConfigError(f"data.novel_samples_per_class ({data.novel_samples_per_class}) is more than "
                          f"data.samples_per_class ({data.samples_per_class}): novel classes are the ones with fewer "
                          "images; lower it, or raise data.samples_per_class")
    if data.score_split == "validation" and data.val_fraction == 0:
        raise ConfigError("data.score_split=validation scores the validation split, but data.val_fraction is 0 (no "
                          "validation split); set data.val_fraction (e.g. 0.1) or score the test split")
    shared = sorted(set(data.held_out_classes) & set(data.novel_classes))
    if shared:
        raise ConfigError(f"data.held_out_classes and data.novel_classes both name {', '.join(shared)}: a class is "
                          "held out (no images) or novel (a few), not both")


def config_to_dict(config: Config) -> dict[str, Any]:
    """The config as plain nested dicts and lists, as written to YAML."""
    return dataclasses.asdict(config)


def save_config(config: Config, path: str | Path) -> None:
    """Write the resolved config to `path` as YAML, atomically; `load_config(path)` reads it back."""
    text = yaml.dump(config_to_dict(config), Dumper=_Dumper, sort_keys=False, default_flow_style=False)
    write_text_atomic(path, "# kgnet resolved config: repeat the run with --config on this file\n" + text)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `--config FILE.yaml` and repeatable `--set KEY=VALUE` options every CLI shares."""
    parser.add_argument("--config", metavar="FILE.yaml", type=path_argument,
                        help="YAML file of settings (see docs/config.md)")
    parser.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                        help="override one setting, e.g. --set train.lr=0.01 (repeatable)")


def config_from_args(args: argparse.Namespace) -> Config:
    """The config selected by the options `add_config_arguments` added."""
    return load_config(args.config, args.overrides)


def config_from_dict(data: dict[str, Any], source: str = "config") -> Config:
    """A `Config` from plain nested dicts (e.g. a release's model.json), checked like a file."""
    config = Config()
    node = _compose(yaml.dump(data, Dumper=_Dumper, sort_keys=False), source, mark_line=False)
    if node is not None:
        _merge(config, node, "", lambda n: source, {})
    check_together(config)
    return config
