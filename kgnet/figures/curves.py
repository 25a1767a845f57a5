"""`curves.png`: training loss and validation accuracy per epoch, every variant on one figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kgnet.figures import plt, save_png


def loss_title(histories: dict[str, list[dict[str, Any]]]) -> str:
    """The loss panel's title, by the stages the histories hold: only a variant with stage-1 rows
    had an alignment stage (the others train with cross-entropy from the first epoch)."""
    trained = [name for name, rows in histories.items() if rows]
    aligned = [name for name in trained if any(int(r["stage"]) == 1 for r in histories[name])]
    if not aligned:
        return "Training loss (cross-entropy)"
    stages = "alignment, then cross-entropy + alignment (dotted line)"
    if len(aligned) == len(trained):
        return f"Training loss\n{stages}"
    return f"Training loss\n{', '.join(aligned)}: {stages};\nothers: cross-entropy"


def plot_curves(histories: dict[str, list[dict[str, Any]]], path: str | Path) -> None:
    """Two panels (train loss, validation top-1) with one line per variant."""
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    steps = all("steps" in r for rows in histories.values() for r in rows)
    for name, rows in histories.items():
        if not rows:
            continue
        x = [_x(r, steps) for r in rows]
        loss_ax.plot(x, [r["train_loss"] for r in rows], marker="o", label=name)
        acc_ax.plot(x, [100 * r["val_top1"] for r in rows], marker="o", label=name)
        stage_one = [_x(r, steps) for r in rows if int(r["stage"]) == 1]
        if stage_one and len(stage_one) < len(rows):
            for ax in (loss_ax, acc_ax):
                ax.axvline(stage_one[-1], color="grey", linestyle=":", linewidth=1)
    # a point per epoch; an epoch of a small training set can be many passes over it (train.min_steps),
    # so the x axis counts optimiser steps where the logs have them
    xlabel = "optimiser step (a point per epoch)" if steps else "epoch"
    loss_ax.set(title=loss_title(histories), xlabel=xlabel, ylabel="loss")
    val_images = sorted({int(r["val_images"]) for rows in histories.values() for r in rows if "val_images" in r})
    sample = f"\n{val_images[0]:,} validation images" if len(val_images) == 1 else ""
    # from 0: a cut axis would magnify the gaps between variants
    acc_ax.set(title=f"Validation top-1{sample}", xlabel=xlabel, ylabel="accuracy (%)", ylim=(0, 100))
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    save_png(fig, path)


def _x(row: dict[str, Any], steps: bool) -> int:
    return int(row["steps"]) if steps else int(row["epoch"])
