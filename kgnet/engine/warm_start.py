"""`model.init_from`: a run that starts from a trained run's release instead of from scratch.

The new run may have an edited ontology (classes, concepts and edges added) and more classes; every
weight that still fits is carried over (`kgnet.models.transfer`), the rest is built. What cannot
fit is refused before any training, in one line: another backbone, another input (channels, size,
normalisation), a renamed class.
"""

from __future__ import annotations

from pathlib import Path

from kgnet.config import Config
from kgnet.data.preprocess import Preprocessing
from kgnet.errors import ConfigError
from kgnet.kg.graph import KnowledgeGraph
from kgnet.models.transfer import Carried, carry_over
from kgnet.release import is_release, load_release

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


def start_from_release(model, config: Config, *, variant: str, graph: KnowledgeGraph | None,
                       class_names: list[str], preprocessing: Preprocessing) -> Carried:
    """Load into `model` (just built for `variant`) what fits of the release `config.model.init_from`
    names for it.

    Raises:
        ConfigError: No such release, or one that cannot fit: another backbone or input, renamed classes,
            weights of other shapes.
    """
    folder = trained_release(config.model.init_from, variant)
    what = f"{SETTING} {folder}"
    release = load_release(folder)
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

