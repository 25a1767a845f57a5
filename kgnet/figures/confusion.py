"""`confusion_<variant>.png`: where each class's images went, row-normalised."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from kgnet.figures import plt, save_png


def plot_confusion(confusion: Sequence[Sequence[int]] | np.ndarray, class_names: Sequence[str], path: str | Path,
                   *, title: str, held_out: Sequence[int] = ()) -> None:
    """Draw a confusion matrix (rows: true class, columns: predicted class) as a PNG.

    Rows are normalised to fractions of the true class's images, so a rare class reads as
    clearly as a common one; cells show percent and count up to 12 classes, percent up to 25,
    and nothing beyond (the colour then carries it). Classes without images in the split (the
    held-out classes on the validation split) lose their row but keep their column.
    Held-out classes are starred.

    Args:
        confusion: [K, K] counts.
        class_names: the K class names, in label order.
        path: the PNG to write.
        title: the figure's title (variant and split).
        held_out: indices of classes held out from training.
    """
    counts = np.asarray(confusion, dtype=np.int64)
    k = len(class_names)
    if counts.shape != (k, k):
        raise ValueError(f"a {counts.shape} confusion matrix for {k} class names")
    names = [f"{name}*" if i in set(held_out) else name for i, name in enumerate(class_names)]
    rows = np.flatnonzero(counts.sum(axis=1) > 0)
    totals = counts[rows].sum(axis=1, keepdims=True)
    fractions = counts[rows] / totals

    cell = 0.62 if k <= 12 else 0.36 if k <= 25 else 0.17
    tick_size = 9 if k <= 25 else 6.5
    width, height = 2.8 + cell * k, 2.2 + cell * len(rows)
    fig, ax = plt.subplots(figsize=(max(width, 6.0), max(height, 4.5)), constrained_layout=True)
    image = ax.imshow(fractions, cmap="Blues", vmin=0, vmax=1, aspect="equal", interpolation="nearest")
    ax.set_xticks(range(k), names, rotation=45 if k <= 25 else 90, ha="right" if k <= 25 else "center",
                  rotation_mode="anchor" if k <= 25 else "default", fontsize=tick_size)
    ax.set_yticks(range(len(rows)), [f"{names[r]} ({totals[i, 0]})" for i, r in enumerate(rows)],
                  fontsize=tick_size)
    ax.set_xlabel("predicted class", fontsize=10)
    ax.set_ylabel("true class (images)", fontsize=10)
    note = "row-normalised"
    if len(held_out):
        note += "; * held out from training"
    if len(rows) < k:
        missing = k - len(rows)
        note += f"; {missing} class{'es' if missing > 1 else ''} without images in this split: no row"
    ax.set_title(f"{title}\n({note})", fontsize=10)
    if k <= 25:
        for i, r in enumerate(rows):
            for j in range(k):
                value = fractions[i, j]
                if counts[r, j] == 0 and k > 12:
                    continue
                text = f"{100 * value:.0f}%\n{counts[r, j]}" if k <= 12 else f"{100 * value:.0f}"
                ax.text(j, i, text, ha="center", va="center", fontsize=7.5 if k <= 12 else 6,
                        color="white" if value > 0.55 else "black", linespacing=0.95)
    bar = fig.colorbar(image, ax=ax, shrink=0.8, pad=0.02)
    bar.set_label("fraction of the true class's images")
    save_png(fig, path)
