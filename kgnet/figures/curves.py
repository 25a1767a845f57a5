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
    for name, rows in histories.items():
        if not rows:
            continue
        epochs = [int(r["epoch"]) for r in rows]
        loss_ax.plot(epochs, [r["train_loss"] for r in rows], marker="o", label=name)
        acc_ax.plot(epochs, [100 * r["val_top1"] for r in rows], marker="o", label=name)
        stage_two = [int(r["epoch"]) for r in rows if int(r["stage"]) == 2]
        if stage_two and stage_two[0] > 1:
            for ax in (loss_ax, acc_ax):
                ax.axvline(stage_two[0] - 0.5, color="grey", linestyle=":", linewidth=1)
    loss_ax.set(title=loss_title(histories), xlabel="epoch", ylabel="loss")
    # from 0: a cut axis would magnify the gaps between variants
    acc_ax.set(title="Validation top-1", xlabel="epoch", ylabel="accuracy (%)", ylim=(0, 100))
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend()
        ax.xaxis.get_major_locator().set_params(integer=True)
    save_png(fig, path)
