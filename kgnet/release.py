"""A trained model as a release: `model.safetensors` + `model.json`, written and read here only.

A release is all that evaluation, prediction and explanation need, and nothing that runs code
when read (no pickle):

- `model.safetensors`: the weights (`model.*`), the run's compiled class graph (`graph.*`
  tensors) and, for knowledge variants, the encoded node texts (`text_features`);
- `model.json`: the format, the variant and its composition (parts, control, fixed settings: a release
  rebuilds its model whatever the variant registry holds later), the run's config, the class
  names (and wnids), which classes were seen in training and which held out, the preprocessing
  (`kgnet.data.preprocess`:
  how an image becomes model input), the graph's non-tensor fields, and with held-out classes
  the GZSL calibration constant `gzsl_gamma` (subtracted from the seen classes' logits before
  choosing among all classes; null = none, as in releases written before it existed).

Loading rebuilds the model from the saved config with `model.pretrained` off, then loads the
weights from the release: a model trained from timm's pretrained weights never asks timm's hub
for them again, and neither the text encoder nor the ontology is needed. The baseline's
release holds the graph too: it uses no knowledge, but its hierarchy-aware mistakes are
measured on the same class hierarchy as the other variants'.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from kgnet.atomic import atomic_path, write_text_atomic
from kgnet.checks import readable_checkpoint
from kgnet.config import Config, config_from_dict, config_to_dict
from kgnet.data.preprocess import Preprocessing
from kgnet.errors import KgnetError
from kgnet.kg.graph import KnowledgeGraph
from kgnet.metrics.classification import seen_offset
from kgnet.models import create_model
from kgnet.variants import Variant

#: The `format` of model.json this version writes and reads. Format 4 (issue 33) names each
#: part's settings in its own section and the variant's parts; releases of formats 2 and 3 (a flat
#: `knowledge` section, other weight names) are refused with a message: train them again.
FORMAT = "kgnet-release-4"
WEIGHTS, META = "model.safetensors", "model.json"
#: What to do about a damaged release.
RESTORE_RELEASE = "restore it from a copy, or train the run again"


@dataclass
class Release:
    """A released model and what was saved with it.

    Attributes:
        folder: The variant folder it was read from.
        model: The model, in eval mode.
        variant: The variant it is (`baseline`, `kgnet`, ...: its name and composition).
        config: The run's config.
        class_names: The model's outputs, in order.
        wnids: WordNet id of each class, when known.
        seen_classes: Label indices trained on.
        unseen_classes: Label indices held out of training (scored zero-shot).
        preprocessing: How an image becomes this model's input.
        graph: The run's class graph, or None when the run had no ontology.
        gzsl_gamma: The constant subtracted from the seen classes' logits when choosing among
            all classes (chosen on validation, `kgnet.engine.gzsl`); None = no calibration.
    """

    folder: Path
    model: Any
    variant: Variant
    config: Config
    class_names: list[str]
    wnids: list[str] | None
    seen_classes: list[int]
    unseen_classes: list[int]
    preprocessing: Preprocessing
    graph: KnowledgeGraph | None
    gzsl_gamma: float | None = None

    def choice_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """`logits` as the choice among all classes uses them: with `gzsl_gamma` subtracted from
        the seen classes' logits when the release has one (and holds classes out)."""
        if self.gzsl_gamma is None or not self.unseen_classes:
            return logits
        return seen_offset(logits, self.seen_classes, self.gzsl_gamma)


def weights_from_release(config: Config) -> Config:
    """`config` for building a release's model, whose weights then come from the release: no
    pretrained weights (timm's hub), no file of them, no trained run to start from."""
    return dataclasses.replace(config, model=dataclasses.replace(config.model, pretrained=False,
                                                                 pretrained_file=None, init_from=None))


def is_release(folder: str | Path) -> bool:
    """Whether `folder` holds a release (both files)."""
    folder = Path(folder)
    return (folder / WEIGHTS).is_file() and (folder / META).is_file()


def variant_release(run: str | Path, name: str, what: str = "--variant") -> Path:
    """The folder of variant `name`'s release in run folder `run`, checked to be readable.

    Raises:
        KgnetError: `run` is no folder, the variant has no release there (the message lists the
            variants that have one), or its weights are truncated or damaged.
    """
    run = Path(run)
    if not run.is_dir():
        raise KgnetError(f"--run {run}: no such folder; give a run folder written by python -m kgnet.train")
    if not name or name in (".", "..") or Path(name).name != name or "\0" in name:
        raise KgnetError(f"{what} {name}: not a variant's name (a folder inside the run, as `kgnet`); a release "
                         "is read from its own run only")
    folder = run / name
    if not is_release(folder):
        found = sorted(p.name for p in run.iterdir() if is_release(p))
        raise KgnetError(f"{what} {name}: {run} has no released variant {name!r} (no {name}/{WEIGHTS} + {META}; "
                         f"variants there: {', '.join(found) or 'none'})")
    readable_checkpoint(folder / WEIGHTS, remedy=RESTORE_RELEASE)
    return folder


def save_release(folder: str | Path, model: torch.nn.Module, *, variant: Variant, config: Config,
                 class_names: list[str], wnids: list[str] | None, seen_classes: list[int],
                 unseen_classes: list[int], preprocessing: Preprocessing, graph: KnowledgeGraph | None = None,
                 text_features: torch.Tensor | None = None, gzsl_gamma: float | None = None) -> None:
    """Write `model.safetensors` and `model.json` into `folder`, each atomically.

    Args:
        folder: The variant folder.
        model: The trained model (its `state_dict` is saved).
        variant: The variant the model is.
        config: The config the model was built from (the run's).
        class_names: The model's outputs, in order.
        wnids: WordNet id per class, or None.
        seen_classes: Label indices trained on.
        unseen_classes: Label indices held out.
        preprocessing: How images were prepared for the model.
        graph: The run's class graph (hierarchy metrics; the knowledge of knowledge variants).
        text_features: The encoded node texts the model was built with (a variant that reads them).
        gzsl_gamma: The GZSL calibration constant (runs with held-out classes), or None.
    """
    folder = Path(folder)
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    graph_fields = None
    if graph is not None:
        fields = graph.to_dict()
        tensors |= {f"graph.{k}": v for k, v in fields.items() if isinstance(v, torch.Tensor)}
        graph_fields = {k: v for k, v in fields.items() if not isinstance(v, torch.Tensor)}
    if text_features is not None:
        tensors["text_features"] = text_features
    meta = {
        "format": FORMAT,
        "variant": variant.name,
        "parts": list(variant.parts),
        "control": variant.control,
        "fixed": dict(variant.fixed),
        "config": config_to_dict(config),
        "class_names": list(class_names),
        "wnids": list(wnids) if wnids is not None else None,
        "seen_classes": list(seen_classes),
        "unseen_classes": list(unseen_classes),
        "preprocessing": preprocessing.to_dict(),
        "graph": graph_fields,
        "gzsl_gamma": gzsl_gamma,
    }
    contiguous = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    with atomic_path(folder / WEIGHTS) as tmp:
        save_file(contiguous, str(tmp), metadata={"format": "pt", "producer": "kgnet"})
    write_text_atomic(folder / META, json.dumps(meta, indent=2) + "\n")


def read_meta(folder: str | Path) -> dict[str, Any]:
    """model.json of the release in `folder`, checked to be one this version reads."""
    path = Path(folder) / META
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise KgnetError(f"{Path(folder)}: no {WEIGHTS} + {META}; is it a variant folder of a kgnet run?") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise KgnetError(f"{path}: not a readable release description ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise KgnetError(f"{path}: release format {found!r}, but this kgnet reads {FORMAT!r}; "
                         "train the run again with this version")
    return meta


def _variant(meta: dict[str, Any], path: Path) -> Variant:
    """The variant model.json describes (its composition as saved, not as the registry has it now)."""
    try:
        return Variant(meta["variant"], "", "", "", tuple(meta["parts"]), meta["control"],
                       tuple(meta["fixed"].items()))
    except (AttributeError, KeyError, TypeError) as err:
        raise KgnetError(f"{path}: not a complete release description (variant, parts, control, fixed: {err}); "
                         f"{RESTORE_RELEASE}") from None


def load_release(folder: str | Path, device: torch.device | str | None = None) -> Release:
    """The released model of a variant folder, in eval mode, with what was saved beside it.

    Args:
        folder: A variant folder of a run (holding model.safetensors + model.json).
        device: Where to put the model; None = the CPU.

    Raises:
        KgnetError: No release there, an unreadable one (truncated, damaged, weights that do not
            fit model.json), or one of another format.
    """
    folder = Path(folder)
    if not is_release(folder):
        raise KgnetError(f"{folder}: no {WEIGHTS} + {META}; is it a variant folder of a kgnet run?")
    meta = read_meta(folder)
    weights = readable_checkpoint(folder / WEIGHTS, remedy=RESTORE_RELEASE)
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError) as err:
        raise KgnetError(f"{weights}: not a readable safetensors file ({err}); {RESTORE_RELEASE}") from None
    config = config_from_dict(meta["config"], source=str(folder / META))
    variant = _variant(meta, folder / META)
    graph = None
    try:
        if meta.get("graph"):
            graph = KnowledgeGraph.from_dict(
                {**meta["graph"], **{k.removeprefix("graph."): v for k, v in tensors.items() if k.startswith("graph.")}})
        preprocessing = Preprocessing.from_dict(meta["preprocessing"])
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
        raise KgnetError(f"{folder / META}: its graph or preprocessing does not fit {WEIGHTS} ({type(err).__name__}: "
                         f"{' '.join(str(err).split())[:160]}); restore the pair from one run") from None
    gamma = meta.get("gzsl_gamma")
    if gamma is not None and (isinstance(gamma, bool) or not isinstance(gamma, (int, float))
                              or not math.isfinite(gamma)):
        raise KgnetError(f"{folder / META}: gzsl_gamma is {gamma!r}, not a finite number or null; {RESTORE_RELEASE}")
    offline = weights_from_release(config)
    try:
        model = create_model(offline, graph, tensors.get("text_features"), variant=variant,
                             num_classes=len(meta["class_names"]), in_chans=preprocessing.in_chans,
                             image_size=preprocessing.image_size, seen=meta.get("seen_classes"))
    except (KeyError, ValueError, TypeError, IndexError) as err:  # parts, a control, a graph that make no model
        raise KgnetError(f"{folder / META}: its variant cannot be built here ({err}); {RESTORE_RELEASE}") from None
    try:
        model.load_state_dict({k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")})
    except (RuntimeError, TypeError, IndexError, ValueError) as err:  # names and shapes that do not fit model.json
        raise KgnetError(f"{weights}: its weights do not fit the model {META} describes (the two files come from "
                         f"different runs or variants?): {' '.join(str(err).split())[:200]}; restore the pair "
                         "from one run") from None
    model = model.to(device if device is not None else "cpu").eval()
    return Release(folder=folder, model=model, variant=variant, config=config,
                   class_names=list(meta["class_names"]), wnids=meta.get("wnids"),
                   seen_classes=list(meta["seen_classes"]), unseen_classes=list(meta["unseen_classes"]),
                   preprocessing=preprocessing, graph=graph,
                   gzsl_gamma=float(gamma) if gamma is not None else None)
