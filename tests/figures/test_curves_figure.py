"""curves.png: the loss title says the stages the histories hold, and accuracy is drawn from 0."""

from __future__ import annotations

from pathlib import Path

import pytest

import kgnet.figures.curves as curves
from kgnet.figures.curves import loss_title, plot_curves


def _rows(stages: list[int]) -> list[dict]:
    return [{"epoch": e + 1, "stage": s, "train_loss": 1.0 / (e + 1), "val_top1": 0.6 + 0.01 * e}
            for e, s in enumerate(stages)]


def test_the_loss_title_names_an_alignment_stage_only_where_a_history_has_one() -> None:
    plain = {"baseline": _rows([2, 2, 2]), "kgnet": _rows([2, 2, 2])}
    assert loss_title(plain) == "Training loss (cross-entropy)"
    both = {"kgnet-prototype": _rows([1, 2, 2])}
    assert "alignment" in loss_title(both) and "others" not in loss_title(both)
    mixed = {**plain, "kgnet-prototype": _rows([1, 2, 2])}
    title = loss_title(mixed)
    assert "kgnet-prototype: alignment" in title and "others: cross-entropy" in title
    assert "baseline" not in title


def test_validation_accuracy_is_drawn_from_zero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    saved = []
    monkeypatch.setattr(curves, "save_png", lambda fig, path: saved.append(fig))
    plot_curves({"baseline": _rows([2, 2]), "kgnet": _rows([2, 2])}, tmp_path / "curves.png")
    loss_ax, acc_ax = saved[0].axes
    assert acc_ax.get_ylim() == (0, 100)  # 60% vs 61% must not look like a chasm
    assert loss_ax.get_title() == "Training loss (cross-entropy)"
    curves.plt.close(saved[0])


def test_the_x_axis_counts_optimiser_steps_where_the_logs_have_them(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 37: the demo's three epochs are 252 steps (42 passes each); a plot over "epoch" 1-3 hid
    that. Logs with `steps` are drawn over the steps, and the title says how many validation images."""
    saved = []
    monkeypatch.setattr(curves, "save_png", lambda fig, path: saved.append(fig))
    rows = [{**row, "steps": 84 * row["epoch"], "val_images": 1000} for row in _rows([2, 2, 2])]
    plot_curves({"baseline": rows}, tmp_path / "curves.png")
    loss_ax, acc_ax = saved[0].axes
    assert list(loss_ax.lines[0].get_xdata()) == [84, 168, 252]
    assert loss_ax.get_xlabel() == "optimiser step (a point per epoch)"
    assert "1,000 validation images" in acc_ax.get_title()
    curves.plt.close(saved[0])
