"""Every figure kgnet draws, one file each: training curves (`curves`), confusion matrices
(`confusion`), embedding projections (`embedding`) and the per-image explanation figures
(`explanation`).

Everything renders with matplotlib's Agg backend (files only, no display) and is saved
atomically, so an interrupted run never leaves half a PNG behind.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402

from kgnet.atomic import atomic_path  # noqa: E402

#: Filled marker shapes, most distinguishable first (superclasses in the embedding figure).
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "p", "h", "8", "d", "H"]


def class_colours(count: int) -> list:
    """`count` distinct colours: tab10 / tab20 while they last, then an even walk round a hue circle."""
    if count <= 10:
        return [plt.get_cmap("tab10")(i) for i in range(count)]
    if count <= 20:
        return [plt.get_cmap("tab20")(i) for i in range(count)]
    return [plt.get_cmap("hsv")(i / count) for i in range(count)]


def save_png(fig, path: str | Path, dpi: int = 120) -> None:
    """Write `fig` to `path` as a PNG atomically and free it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight")
    plt.close(fig)
