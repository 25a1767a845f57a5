"""The tables a run prints: the comparison of its variants and what their evaluation found."""

from __future__ import annotations

import math
from typing import Any


def comparison_table(metrics: dict[str, dict[str, Any]]) -> str:
    """Top-1, top-5, the change over the baseline, zero-shot, size and training cost per variant."""
    zero_shot = any("zero_shot_top1" in m for m in metrics.values())
    header = f"{'variant':<18}{'top-1':>8}{'top-5':>8}{'Δ top-1':>9}" + (f"{'zero-shot':>11}" if zero_shot else "")
    header += f"{'params':>12}{'train s':>9}{'img/s':>8}"
    lines = [header, "-" * len(header)]
    baseline = metrics.get("baseline")
    for name, m in metrics.items():
        delta = f"{100 * (m['top1'] - baseline['top1']):+.2f}" if baseline and m is not baseline else ""
        row = f"{name:<18}{100 * m['top1']:>7.2f}%{100 * m['top5']:>7.2f}%{delta:>9}"
        if zero_shot:
            row += f"{100 * m['zero_shot_top1']:>10.2f}%" if "zero_shot_top1" in m else f"{'':>11}"
        row += f"{m['params']['total']:>12,}{m['train_seconds']:>9.0f}{m['train_images_per_second']:>8.0f}"
        lines.append(row)
    lines.append("train s, img/s: training time and speed on this machine under its load at the time (other "
                 "processes slow them; benchmarks/model_cost.py measures cost as ratios)")
    return "\n".join(lines)


def evaluation_table(results: dict[str, dict[str, Any]]) -> str:
    """Accuracy, calibration, hierarchy, zero-shot and silhouettes per variant (percentages
    where they are fractions; silhouettes and severity as they are)."""
    zero_shot = any("zero_shot_top1" in m for m in results.values())
    hierarchy = any("mistake_severity" in m for m in results.values())
    columns = [("top-1", "top1", True), ("top-5", "top5", True), ("ECE", "ece", True)]
    if hierarchy:
        columns.append(("severity", "mistake_severity", False))
    if zero_shot:
        columns += [("zero-shot", "zero_shot_top1", True), ("GZSL H", "gzsl_harmonic", True)]
        if any("gzsl_calibrated_harmonic" in m for m in results.values()):
            columns.append(("GZSL H cal.", "gzsl_calibrated_harmonic", True))
        columns.append(("AUSUC", "gzsl_ausuc", True))
    if any("class_silhouette" in m for m in results.values()):
        columns += [("class sil.", "class_silhouette", False), ("super sil.", "superclass_silhouette", False)]
    header = f"{'variant':<18}" + "".join(f"{title:>12}" for title, _, _ in columns)
    lines = [header, "-" * len(header)]
    for name, m in results.items():
        cells = []
        for _, key, percent in columns:
            value = m.get(key)
            if value is None or (isinstance(value, float) and not math.isfinite(value)):
                cells.append(f"{'n/a':>12}")
            else:
                cells.append(f"{100 * value:>11.2f}%" if percent else f"{value:>12.3f}")
        lines.append(f"{name:<18}" + "".join(cells))
    reasons = {m["superclass_silhouette_reason"] for m in results.values() if "superclass_silhouette_reason" in m}
    lines += [f"super sil. {reason}" for reason in sorted(reasons)]
    return "\n".join(lines)
