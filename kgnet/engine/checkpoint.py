"""Checkpoints: the full training state for resuming, and the released model without pickle.

`last.pt` holds everything a killed run needs to continue (weights, optimiser, scheduler,
epoch, history); it is written atomically, so a kill mid-write leaves the previous one intact.
`model.safetensors` + `model.json` are the release: tensors in safetensors, everything else
(config, class names, the compiled graph's non-tensor fields) in JSON; loading them runs no
pickle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from kgnet.atomic import atomic_path, write_text_atomic


def save_training_state(path: str | Path, state: dict[str, Any]) -> None:
    """Write a training state dict atomically (temp file + rename)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_training_state(path: str | Path) -> dict[str, Any]:
    """Read a state written by `save_training_state` (tensors and plain containers only)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def save_release(folder: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write `model.safetensors` and `model.json` into `folder`, each atomically."""
    folder = Path(folder)
    contiguous = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    with atomic_path(folder / "model.safetensors") as tmp:
        save_file(contiguous, str(tmp), metadata={"format": "pt", "producer": "kgnet"})
    write_text_atomic(folder / "model.json", json.dumps(meta, indent=2) + "\n")


def load_release(folder: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and metadata of a released model (no pickle involved)."""
    folder = Path(folder)
    return load_file(str(folder / "model.safetensors")), json.loads((folder / "model.json").read_text())
