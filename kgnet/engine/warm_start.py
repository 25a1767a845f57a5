"""`model.init_from`: a run that starts from a trained run's release instead of from scratch.

The new run may have an edited ontology (classes, concepts and edges added) and more classes; every
weight that still fits is carried over (`kgnet.models.transfer`), the rest is built. What cannot
fit is refused before any training, in one line: another backbone, another input (channels, size,
normalisation), a renamed class, a control whose random draws depend on the whole graph (it would give
the trained classes other knowledge once classes are added). The trained run's classes are handed
to the new model as it is built (`create_model(trained=...)`), so a control keeps what it gave them
(the permuted control: each trained class keeps the other class's concepts it trained with).
"""

from __future__ import annotations

from pathlib import Path

from kgnet.config import Config
from kgnet.data.preprocess import Preprocessing
from kgnet.errors import ConfigError
from kgnet.kg.graph import KnowledgeGraph
from kgnet.models.controls import CONTROLS
from kgnet.models.transfer import Carried, carry_over
from kgnet.release import Release, is_release, load_release

SETTING = "model.init_from"


def trained_release(init_from: str, variant: str) -> Path:
    """The release `init_from` names for `variant`: a release folder, or a run folder holding one
    of that variant."""
    path = Path(init_from)
    if is_release(path):
        return path
    if is_release(path / variant):
        return path / variant
    if not path.is_dir():
        raise ConfigError(f"{SETTING} {init_from}: no such folder; give a run folder of python -m kgnet.train "
                          "(RUN) or one of its variants (RUN/kgnet)")
    found = sorted(p.name for p in path.iterdir() if is_release(p))
    raise ConfigError(f"{SETTING} {init_from}: holds no release of {variant} (releases there: "
                      f"{', '.join(found) or 'none'}); name one as {init_from}/VARIANT")


def release_to_start_from(config: Config, variant: str, class_names: list[str]) -> Release:
    """The release `config.model.init_from` names for `variant`, loaded (its classes are the new
    model's `trained`).

    Raises:
        ConfigError: No such release, or a control that cannot take added classes.
    """
    release = load_release(trained_release(config.model.init_from, variant))
    control = release.variant.control
    if not CONTROLS[control].survives_edit and set(class_names) != set(release.class_names):
        raise ConfigError(f"{SETTING} {release.folder}: the {control} control of {release.variant.name} draws from "
                          "the whole graph, so added classes would give its trained classes other knowledge; start "
                          "the variant it controls instead")
    return release


def start_from_release(model, release: Release, config: Config, *, graph: KnowledgeGraph | None,
                       class_names: list[str], preprocessing: Preprocessing) -> Carried:
    """Load into `model` (just built with `trained=release.class_names`) what fits of `release`
    (`release_to_start_from`).

    Raises:
        ConfigError: A release that cannot fit: another backbone or input, renamed classes, weights
            of other shapes.
    """
    what = f"{SETTING} {release.folder}"
    theirs, ours = release.config.model.backbone, config.model.backbone
    if theirs != ours:
        raise ConfigError(f"{what}: its backbone is {theirs}, this run's is {ours}; set model.backbone={theirs} "
                          "to start from it, or train from scratch")
    kept = ("in_chans", "image_size", "mean", "std")
    differ = [k for k in kept if getattr(release.preprocessing, k) != getattr(preprocessing, k)]
    if differ:
        said = ", ".join(f"{k} {getattr(release.preprocessing, k)} -> {getattr(preprocessing, k)}" for k in differ)
        raise ConfigError(f"{what}: it was trained on other input ({said}); keep data.image_size, the data set "
                          "and model.pretrained as the trained run had them")
    try:
        return carry_over(release.model, model, source_graph=release.graph, target_graph=graph,
                          source_classes=release.class_names, target_classes=class_names, what=what)
    except ValueError as err:
        raise ConfigError(f"{what}: {err}") from None

