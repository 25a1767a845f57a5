"""The per-image explanation figure, and the mean deletion/insertion curves.

One figure per image, so the two kinds of evidence sit together:

- top: the input, the baseline's Grad-CAM and the knowledge variant's map (a concept head's
  exact class map, else Grad-CAM), each titled with its own prediction and probability (a wrong
  one in red, framed), and a bar chart of the knowledge variant's concepts: for a concept head,
  the concepts that add to the predicted class, then the runner-up's own strongest ones, each
  bar its contribution in logit points (removing the concept moves the score by exactly that);
  for the prototype design, the most-attended concepts;
- below: one heat map per concept shown, upsampled onto the image on one shared colour scale:
  the cosine of each token with the concept (a concept head: the region that activated it, with
  the ontology path that links it to its class; the runner-up's concepts on a row of their
  own), or the attention of each token to it.

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

#: Heat maps per row (the prototype design: its only row).
MAPS = 4
#: Bars in the attention chart.
BARS = 8
#: A concept head's chart: at most this many concepts of the predicted class, and of the runner-up's own.
PREDICTED_CONCEPTS = 4
RUNNER_UP_CONCEPTS = 3
#: Colours of the predicted class, the runner-up, and a wrong prediction.
PREDICTED_COLOUR, RUNNER_UP_COLOUR, WRONG_COLOUR = "tab:blue", "tab:orange", "#b00020"


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


def _frame(ax, colour: str) -> None:
    """A thick coloured frame round a panel (a wrong prediction)."""
    for spine in ax.spines.values():
        spine.set(edgecolor=colour, linewidth=4)


#: A line under a map's title saying why it is that map: a concept head's Grad-CAM vanishes
#: (its cosine scores do not change when a token is scaled, so gradient x activation is ~0).
MAP_NOTES = {"exact class map": "(in place of Grad-CAM, which a cosine head zeroes)"}


def _prediction_panel(ax, image: np.ndarray, prediction: Prediction, true_label: str | None, lines: list[str], *,
                      fontsize: float):
    """The image under one model's map, titled with `lines`; a wrong prediction framed and titled in red."""
    _show_image(ax, image)
    shown = ax.imshow(prediction.cam, cmap="jet", alpha=0.5, vmin=0, vmax=1, interpolation="bilinear")
    wrong = true_label is not None and prediction.label != true_label
    ax.set_title("\n".join(lines + ["WRONG"] * wrong), fontsize=fontsize, color=WRONG_COLOUR if wrong else "black",
                 fontweight="bold" if wrong else "normal")
    if wrong:
        _frame(ax, WRONG_COLOUR)
    return shown


def thumbnail_figure(path: str | Path, *, image: np.ndarray, true_label: str | None,
                     predictions: Sequence[Prediction]) -> None:
    """A small strip for the gallery's grid: the input and each model's map, a wrong prediction
    framed in red (the full figure is one click away)."""
    fig = Figure(figsize=(1.5 * (1 + len(predictions)), 1.9), layout="constrained")
    axes = fig.subplots(1, 1 + len(predictions))
    _show_image(axes[0], image)
    axes[0].set_title("input", fontsize=10)
    for ax, prediction in zip(axes[1:], predictions):  # the card's text names the classes
        _prediction_panel(ax, image, prediction, true_label, [prediction.variant], fontsize=10)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")


def _map_rows(concepts: Sequence[Concept] | Sequence[ConceptContribution], maps: np.ndarray,
              scores: ClassScores | None) -> list[list[int]]:
    """Which concepts' maps each row of heat maps shows: a concept head's predicted-class concepts,
    then the runner-up's own; attention: the first `MAPS`."""
    if scores is None:
        return [list(range(min(len(maps), MAPS)))]
    rows = [[j for j, c in enumerate(concepts) if c.for_runner_up is own] for own in (False, True)]
    return [row for row in rows if row] or [[]]


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
        concepts: Contributions of a concept head (`top_contributions`: the predicted class's,
            then the runner-up's own), or attention weights strongest first (`BARS` are drawn).
        maps: [k, H, W] maps of the first k concepts: every concept of a concept head
            (token-concept cosines), at most `MAPS` attention maps.
        uniform_weight: Attention only: 1 / (number of knowledge tokens), the chart's reference line.
        scores: Contributions only: the predicted and runner-up class and their logits.
    """
    rows = _map_rows(concepts, maps, scores)
    columns = max(len(predictions) + 2, MAPS)
    fig = Figure(figsize=(3.4 * columns, 3.8 * (1 + len(rows))), layout="constrained")
    # independent layouts: colour bars never shift columns
    top, bottom = fig.subfigures(2, 1, height_ratios=[1, len(rows)])
    fig.suptitle(title, fontsize=13, fontweight="bold")

    axes = top.subplots(1, len(predictions) + 2, width_ratios=[1] * (len(predictions) + 1) + [1.35])
    _show_image(axes[0], image)
    axes[0].set_title("input\ntrue: " + (_wrap(true_label, 28) if true_label is not None else "unknown"), fontsize=11)
    cam_image = None
    for ax, prediction in zip(axes[1:], predictions):
        lines = [f"{prediction.variant} {prediction.map_name}",
                 *([_wrap(MAP_NOTES[prediction.map_name], 30)] if prediction.map_name in MAP_NOTES else []),
                 f"predicted: {_wrap(prediction.label, 24)} ({100 * prediction.probability:.1f}%)"]
        cam_image = _prediction_panel(ax, image, prediction, true_label, lines, fontsize=11)
    if cam_image is not None:
        top.colorbar(cam_image, ax=list(axes[1:-1]), shrink=0.8, label="map (relative to its maximum)")

    chart = axes[-1]
    variant = predictions[-1].variant + ": " if predictions else ""
    if scores is not None:
        _contribution_chart(chart, list(concepts), scores)
        chart.set_title(f"{variant}concept contributions", fontsize=11)
    else:
        _attention_chart(chart, list(concepts[:BARS]), uniform_weight)
        chart.set_title(f"{variant}top concepts", fontsize=11)

    # one colour scale for all maps (min..max of the shown maps), so brighter = stronger
    map_axes = bottom.subplots(len(rows), MAPS, squeeze=False)
    heat = None
    low, high = (float(maps.min()), float(maps.max())) if maps.size else (0.0, 1.0)
    for row, ax_row in zip(rows, map_axes):
        for slot, ax in enumerate(ax_row):
            if slot >= len(row):
                ax.axis("off")
                continue
            j = row[slot]
            _show_image(ax, image)
            heat = ax.imshow(maps[j], cmap="inferno", alpha=0.6, vmin=low, vmax=max(high, low + 1e-9),
                             interpolation="bilinear")
            _map_title(ax, concepts[j], scores)
    if heat is not None:
        bottom.colorbar(heat, ax=list(map_axes.flat), shrink=0.8,
                        label="token-concept cosine" if scores is not None else "attention weight")

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")


def _map_title(ax, concept: Concept | ConceptContribution, scores: ClassScores | None) -> None:
    """What a heat map shows: the concept, what it adds to its class, and (below) why it belongs to it."""
    if scores is None:
        ax.set_title(f"where \u201c{_wrap(concept.label, 24)}\u201d\nwas attended ({concept.weight:.3f})",
                     fontsize=10)
        return
    if concept.for_runner_up:
        cls, value, colour = f"{scores.runner_up} (runner-up)", concept.runner_up, RUNNER_UP_COLOUR
    else:
        cls, value, colour = scores.predicted, concept.contribution, "black"
    ax.set_title(f"where \u201c{_wrap(concept.label, 24)}\u201d was found\n{value:+.2f} to {_wrap(cls, 28)}",
                 fontsize=10, color=colour)
    ax.set_xlabel(_wrap(concept.path or f"not linked to {cls} in the ontology", 34), fontsize=8)


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
    """Per concept, its logit points to the predicted class (blue) and to the runner-up (orange),
    each bar labelled with its value; a concept that adds nothing to a class has no bar for it."""
    if not bars:
        return
    positions = np.arange(len(bars))
    for offset, colour, name, logit, values in (
            (-0.2, PREDICTED_COLOUR, scores.predicted, scores.predicted_logit, [c.contribution for c in bars]),
            (0.2, RUNNER_UP_COLOUR, scores.runner_up, scores.runner_up_logit, [c.runner_up for c in bars])):
        drawn = [(y + offset, v) for y, v in zip(positions, values) if v != 0]
        ax.barh([y for y, _ in drawn], [v for _, v in drawn], height=0.4, color=colour,
                label=f"{_wrap(name, 18)} (logit {logit:.2f})")
        for y, v in drawn:
            ax.text(v, y, f" {v:+.2f} ", va="center", ha="left" if v >= 0 else "right", fontsize=7)
    ax.set_yticks(positions, [_wrap(c.label, 22) for c in bars], fontsize=9)
    for tick, concept in zip(ax.get_yticklabels(), bars):
        tick.set_color(RUNNER_UP_COLOUR if concept.for_runner_up else "black")
    own = [y for y, c in zip(positions, bars) if c.for_runner_up]
    if own and own[0] > 0:  # the runner-up's own concepts below a line
        ax.axhline(own[0] - 0.5, color="grey", linestyle=":", linewidth=1)
    ax.invert_yaxis()
    ax.axvline(0, color="grey", linewidth=0.8)
    values = [v for c in bars for v in (c.contribution, c.runner_up)]
    low, high = min(0.0, *values), max(0.0, *values)
    room = 0.3 * (high - low) + 1e-9  # for the value labels beyond the bars' ends
    ax.set_xlim(low - room if low < 0 else 0, high + room)
    ax.set_xlabel("logit points the concept adds\n(removing it moves the score by exactly this)", fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(4))
    ax.legend(fontsize=7, loc="best", title="class (logit: sum over all concepts)", title_fontsize=7)


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
