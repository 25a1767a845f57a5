"""The full training state for resuming: `last.pt`.

It holds everything a killed run needs to continue (weights, optimiser, scheduler, epoch,
history) and is written atomically, so a kill mid-write leaves the previous one intact. It is
a torch pickle read with `weights_only=True`; the released model is `kgnet.release` (no
pickle at all).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from kgnet.atomic import atomic_path


def save_training_state(path: str | Path, state: dict[str, Any]) -> None:
    """Write a training state dict atomically (temp file + rename)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_training_state(path: str | Path) -> dict[str, Any]:
    """Read a state written by `save_training_state` (tensors and plain containers only)."""
    return torch.load(path, map_location="cpu", weights_only=True)
