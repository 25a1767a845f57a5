"""The adding-classes report (issue 34): docs/extension.md is what the committed rows give, and
its checks read forgetting apart from the novel-base trade-off."""

from __future__ import annotations

import json
import sys

from conftest import REPO

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import extension  # noqa: E402

ROWS = REPO / "benchmarks" / "results" / "extension" / "rows.jsonl"


def _rows() -> list[dict]:
    return [json.loads(line) for line in ROWS.read_text().splitlines() if line.strip()]


def test_the_committed_report_is_what_the_rows_give(tmp_path) -> None:
    report = tmp_path / "extension.md"
    extension.write_report(_rows(), report, tmp_path / "figures" / "extension_curves.png")
    assert report.read_text() == (REPO / "docs" / "extension.md").read_text()


def test_forgetting_is_checked_apart_from_the_trade_off() -> None:
    """A run whose base classes keep their accuracy among themselves passes the forgetting line
    even when the calibrated operating point gives base images to the new classes."""
    row = {"seed": 0, "pair": ["Sandal", "Bag"], "variant": "kgnet", "k": 5, "base_run_top1": 0.80,
           "base": 0.60, "base_among_base": 0.795, "novel": 0.7, "H": 0.65, "ausuc": 0.6}
    checks = {what: met for what, _, met in extension.must_show([row])}
    trade_off = [met for what, met in checks.items() if "among all 10 at the chosen offset" in what]
    forgetting = [met for what, met in checks.items() if "forgetting alone" in what]
    assert trade_off == [False] and forgetting == [True]


def test_tuning_lines_compare_each_way_on_validation() -> None:
    base = {"seed": 1, "pair": ["Sandal", "Bag"], "variant": "kgnet", "k": 5, "base_run_val_top1": 0.8}
    rows = [{**base, "tune": [*extension.TUNE], "val_H": 0.7, "val_ausuc": 0.6, "val_base_among_base": 0.79},
            {**base, "tune": [*extension.TUNE, "train.backbone_lr_scale=0"], "val_H": 0.6, "val_ausuc": 0.5,
             "val_base_among_base": 0.8}]
    lines = extension.tuning_lines(rows)
    assert "| default | kgnet | 5 | 70.0 | 0.600 | -1.0 | 1 |" in lines
    assert "| train.backbone_lr_scale=0 | kgnet | 5 | 60.0 | 0.500 | +0.0 | 1 |" in lines
