"""`embedding_projection.png`: the image embeddings of each variant in 2-D, side by side."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.lines import Line2D

from kgnet.figures import MARKERS, class_colours, plt, save_png

#: Above this many classes the class legend would not fit; colour then only separates them.
MAX_LEGEND_CLASSES = 30


@dataclass
class ProjectionPanel:
    """One variant's points: `coords` [n, 2], `labels` [n] class indices, and a subtitle."""

    variant: str
    coords: np.ndarray
    labels: np.ndarray
    subtitle: str = ""


def plot_embedding_projection(panels: Sequence[ProjectionPanel], class_names: Sequence[str],
                              superclass_names: Sequence[str] | None, path: str | Path, *, title: str,
                              axis_name: str) -> None:
    """One panel per variant, colour = class, marker = superclass, one shared legend.

    The legend lists each class with its own colour and marker and its superclass in
    brackets, so one legend explains both encodings. Above `MAX_LEGEND_CLASSES` classes the
    legend lists the superclass markers only.

    Args:
        panels: the variants to draw, in order.
        class_names: the K class names, in label order.
        superclass_names: [K] each class's superclass name, or None (every marker a circle).
        path: the PNG to write.
        title: the figure's title (method, split, sample size).
        axis_name: what the axes are, e.g. "t-SNE" or "PC" (labelled "<axis_name> 1", "<axis_name> 2").
    """
    k = len(class_names)
    colours = class_colours(k)
    supers = list(superclass_names) if superclass_names is not None else ["" for _ in class_names]
    super_order = list(dict.fromkeys(supers))
    # Repeated shapes would make two superclasses look like one: beyond the shapes, all circles.
    shaped = len(super_order) <= len(MARKERS)
    marker_of = {s: MARKERS[i] if shaped else "o" for i, s in enumerate(super_order)}
    present = sorted(set(np.concatenate([p.labels for p in panels]).tolist())) if panels else []

    cols = min(len(panels), 3) or 1
    legend_width = 3.2 if k <= MAX_LEGEND_CLASSES or shaped else 0.0
    rows = math.ceil(len(panels) / cols) or 1
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols + legend_width, 5.0 * rows + 0.6), squeeze=False,
                             constrained_layout=True)
    size = 14 if max((len(p.labels) for p in panels), default=0) <= 2500 else 6
    for ax, panel in zip(axes.flat, panels):
        for c in present:
            mask = panel.labels == c
            if mask.any():
                ax.scatter(panel.coords[mask, 0], panel.coords[mask, 1], s=size, color=colours[c],
                           marker=marker_of[supers[c]], alpha=0.75, linewidths=0)
        ax.set_title(f"{panel.variant}\n{panel.subtitle}" if panel.subtitle else panel.variant, fontsize=10)
        ax.set_xlabel(f"{axis_name} 1")
        ax.set_ylabel(f"{axis_name} 2")
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.2)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)

    if k <= MAX_LEGEND_CLASSES:
        handles = [Line2D([], [], linestyle="", marker=marker_of[supers[c]], color=colours[c], markersize=7,
                          label=f"{class_names[c]} ({supers[c]})" if supers[c] else class_names[c])
                   for c in present]
        legend_title = "class (superclass)" if superclass_names is not None else "class"
    elif shaped:
        handles = [Line2D([], [], linestyle="", marker=marker_of[s], color="dimgrey", markersize=7, label=s)
                   for s in super_order]
        legend_title = f"superclass (colour: {k} classes)"
    else:
        handles, legend_title = [], ""
        title += (f"\n({k} classes and {len(super_order)} superclasses are too many to tell apart by colour and "
                  "shape; the silhouettes in the panel titles measure the grouping)")
    if handles:
        fig.legend(handles=handles, loc="outside right center", title=legend_title, fontsize=8, title_fontsize=9,
                   frameon=False, ncols=1 if len(handles) <= 30 else 2)
    fig.suptitle(title, fontsize=11)
    save_png(fig, path)
