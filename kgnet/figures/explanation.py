"""The per-image explanation figure, and the mean deletion/insertion curves.

One figure per image, two rows, so the two kinds of evidence sit together:

- top: the input, the baseline's Grad-CAM and the knowledge variant's map (a concept head's
  exact class map, else Grad-CAM), each titled with its own prediction and probability, and a bar chart of the knowledge variant's top concepts: for a
  concept head, each concept's contribution to the predicted class and to the runner-up (logit
  points; removing the concept moves the score by exactly that); for the prototype design, the
  most-attended concepts;
- bottom: one heat map per top concept, upsampled onto the image on one shared colour scale: the
  cosine of each token with the concept (a concept head: the region that activated it, with the
  ontology path that links it to the class), or the attention of each token to it.

Drawn with matplotlib's object API on the Agg canvas (no pyplot state, no display), and written
atomically.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from kgnet.atomic import atomic_path
from kgnet.explain.concepts import Concept
from kgnet.explain.contributions import ConceptContribution

#: Concept heat maps in the bottom row (and at least as many bars in the chart).
MAPS = 4
#: Bars in the concept chart.
BARS = 8


@dataclass
class Prediction:
    """One model's answer for the image and the map that explains it."""

    variant: str
    label: str
    probability: float
    cam: np.ndarray  # [H, W] in [0, 1]
    map_name: str = "Grad-CAM"  # what `cam` is: "Grad-CAM", or a concept head's "exact class map"


@dataclass
class ClassScores:
    """The two classes a contribution chart compares, and their logits (each the sum of its
    concepts' contributions)."""

    predicted: str
    predicted_logit: float
    runner_up: str
    runner_up_logit: float


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width, break_long_words=True)) or text


def _show_image(ax, image: np.ndarray) -> None:
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def explanation_figure(
    path: str | Path,
    *,
    image: np.ndarray,
    title: str,
    true_label: str | None,
    predictions: Sequence[Prediction],
    concepts: Sequence[Concept] | Sequence[ConceptContribution],
    maps: np.ndarray,
    uniform_weight: float | None = None,
    scores: ClassScores | None = None,
) -> None:
    """Write the figure of one image as a PNG.

    Args:
        path: The PNG to write.
        image: The input in display range [0, 1], [H, W] (grey) or [H, W, 3].
        title: Headline (the file name or the test-set index).
        true_label: The true class, or None when unknown.
        predictions: Baseline then knowledge variant (any number of columns works).
        concepts: The top concepts, strongest first (`BARS` are drawn): contributions of a
            concept head, or attention weights.
        maps: [k, H, W] maps of the first k concepts (k <= `MAPS`): token-concept cosines or
            attention.
        uniform_weight: Attention only: 1 / (number of knowledge tokens), the chart's reference line.
        scores: Contributions only: the predicted and runner-up class and their logits.
    """
    fig = Figure(figsize=(3.4 * max(len(predictions) + 2, MAPS), 7.6), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1, 1])  # independent layouts: colour bars never shift columns
    fig.suptitle(title, fontsize=13, fontweight="bold")

    axes = top.subplots(1, len(predictions) + 2, width_ratios=[1] * (len(predictions) + 1) + [1.35])
    _show_image(axes[0], image)
    axes[0].set_title("input\ntrue: " + (_wrap(true_label, 28) if true_label is not None else "unknown"), fontsize=11)
    cam_image = None
    for ax, prediction in zip(axes[1:], predictions):
        _show_image(ax, image)
        cam_image = ax.imshow(prediction.cam, cmap="jet", alpha=0.5, vmin=0, vmax=1, interpolation="bilinear")
        ax.set_title(f"{prediction.variant} {prediction.map_name}\npredicted: {_wrap(prediction.label, 24)} "
                     f"({100 * prediction.probability:.1f}%)", fontsize=11)
    if cam_image is not None:
        top.colorbar(cam_image, ax=list(axes[1:-1]), shrink=0.8, label="map (relative to its maximum)")

    chart = axes[-1]
    variant = predictions[-1].variant + ": " if predictions else ""
    if scores is not None:
        _contribution_chart(chart, list(concepts[:BARS]), scores)
        chart.set_title(f"{variant}concept contributions", fontsize=11)
    else:
        _attention_chart(chart, list(concepts[:BARS]), uniform_weight)
        chart.set_title(f"{variant}top concepts", fontsize=11)

    # one colour scale for all maps (min..max of the shown maps), so brighter = stronger
    map_axes = bottom.subplots(1, MAPS)
    heat = None
    low, high = (float(maps.min()), float(maps.max())) if maps.size else (0.0, 1.0)
    for j, ax in enumerate(map_axes):
        if j >= len(maps):
            ax.axis("off")
            continue
        _show_image(ax, image)
        heat = ax.imshow(maps[j], cmap="inferno", alpha=0.6, vmin=low, vmax=max(high, low + 1e-9),
                         interpolation="bilinear")
        concept = concepts[j]
        if scores is not None:
            ax.set_title(f"where \u201c{_wrap(concept.label, 24)}\u201d was found\n"
                         f"{concept.contribution:+.2f} to {_wrap(scores.predicted, 20)}", fontsize=10)
            ax.set_xlabel(_wrap(concept.path or f"not linked to {scores.predicted} in the ontology", 34),
                          fontsize=8)
        else:
            ax.set_title(f"where \u201c{_wrap(concept.label, 24)}\u201d\nwas attended ({concept.weight:.3f})",
                         fontsize=10)
    if heat is not None:
        bottom.colorbar(heat, ax=list(map_axes), shrink=0.8,
                        label="token-concept cosine" if scores is not None else "attention weight")

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")


def _attention_chart(ax, bars: list[Concept], uniform_weight: float) -> None:
    """Horizontal bars of the mean attention weights, the uniform weight dashed."""
    if not bars:
        return
    labels = [_wrap(c.label, 22) for c in bars]
    weights = [c.weight for c in bars]
    positions = np.arange(len(bars))
    ax.barh(positions, weights, color="tab:blue")
    ax.set_yticks(positions, labels, fontsize=9)
    ax.invert_yaxis()
    ax.axvline(uniform_weight, color="grey", linestyle="--", linewidth=1)
    ax.set_xlim(0, max(max(weights), uniform_weight) * 1.3)
    for y, w in zip(positions, weights):
        ax.text(w, y, f" {w:.3f}", va="center", fontsize=8)
    ax.set_xlabel(f"mean attention weight\n(dashed: uniform, 1/{round(1 / uniform_weight)})", fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(4))


def _contribution_chart(ax, bars: list[ConceptContribution], scores: ClassScores) -> None:
    """Two bars per concept: its logit points to the predicted class and to the runner-up."""
    if not bars:
        return
    positions = np.arange(len(bars))
    mine = [c.contribution for c in bars]
    theirs = [c.runner_up for c in bars]
    ax.barh(positions - 0.2, mine, height=0.4, color="tab:blue",
            label=f"{_wrap(scores.predicted, 18)} (logit {scores.predicted_logit:.2f})")
    ax.barh(positions + 0.2, theirs, height=0.4, color="tab:orange",
            label=f"{_wrap(scores.runner_up, 18)} (logit {scores.runner_up_logit:.2f})")
    ax.set_yticks(positions, [_wrap(c.label, 22) for c in bars], fontsize=9)
    ax.invert_yaxis()
    ax.axvline(0, color="grey", linewidth=0.8)
    low, high = min(0.0, *mine, *theirs), max(0.0, *mine, *theirs)
    ax.set_xlim(low * 1.3 if low < 0 else 0, high * 1.35 + 1e-9)
    for y, w in zip(positions - 0.2, mine):
        ax.text(w, y, f" {w:+.2f}", va="center", ha="left" if w >= 0 else "right", fontsize=7)
    ax.set_xlabel("logit points the concept adds\n(removing it moves the score by exactly this)", fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(4))
    ax.legend(fontsize=7, loc="lower right", title="class (logit: sum over all concepts)", title_fontsize=7)


def curves_figure(path: str | Path, curves: dict[str, dict[str, np.ndarray]], *, fill: str) -> None:
    """Mean deletion and insertion curves of each map, Grad-CAM or exact class map (a band of +- one std).

    Args:
        path: The PNG to write.
        curves: variant -> {"deletion_curve": [N, S+1], "insertion_curve": [N, S+1],
            "deletion": [N], "insertion": [N]}.
        fill: The fill used, for the axis label.
    """
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, mode in zip(axes, ("deletion", "insertion")):
        for variant, result in curves.items():
            curve = result[f"{mode}_curve"]
            x = np.linspace(0, 100, curve.shape[1])
            mean, std = curve.mean(axis=0), curve.std(axis=0)
            line, = ax.plot(x, mean, label=f"{variant} (AUC {result[mode].mean():.3f})")
            ax.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.15)
        verb = "removed" if mode == "deletion" else "revealed"
        ax.set(title=f"{mode.capitalize()} ({'lower' if mode == 'deletion' else 'higher'} is better)",
               xlabel=f"pixels {verb}, most salient first (%; removed = {fill})",
               ylabel="probability of the predicted class", ylim=(0, 1.02), xlim=(0, 100))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
