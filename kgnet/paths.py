"""Where kgnet finds its shipped files and keeps its caches.

Shipped ontologies (`kg/`) and dataset cards (`datasets/`) sit at the repository root in a
source checkout and inside the package (`kgnet/_shipped/`) in an installed wheel; both layouts
resolve here so callers never care which one they run from.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def shipped_dir(name: str) -> Path:
    """The folder of shipped files `name` ("kg" or "datasets"), wheel or source checkout."""
    for candidate in (_PACKAGE_DIR / "_shipped" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"kgnet's shipped folder {name!r} is missing from this installation")


def cache_dir() -> Path:
    """Root of kgnet's on-disk caches: $KGNET_CACHE, else $XDG_CACHE_HOME/kgnet, else ~/.cache/kgnet."""
    root = os.environ.get("KGNET_CACHE")
    if root:
        path = Path(root)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        path = (Path(xdg) if xdg else Path.home() / ".cache") / "kgnet"
    path.mkdir(parents=True, exist_ok=True)
    return path
