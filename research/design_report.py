"""Tables from design_sweep cells: validation top-1 per design and regime, paired by seed.

A variant is compared with the baseline trained with the same recipe (learning rate, steps,
batch, augmentation, ...: the baseline reads nothing else), and each control with `kgnet` of
the same design. Differences are in points, with 95% Student-t intervals over seeds.

    python -m benchmarks.design_report benchmarks/results/design/*.jsonl [--design NAME ...]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from benchmarks.stats import describe, paired_difference

RECIPE_KEYS = ("backbone", "embed_dim", "lr", "wd", "pad", "flip", "steps", "batch", "dropout")


def recipe(cfg: dict, shots: int) -> str:
    parts = {k: cfg[k] for k in RECIPE_KEYS}
    parts["steps"] = cfg["steps"][str(shots)]
    parts["batch"] = cfg["batch"][str(shots)]
    if isinstance(parts["lr"], dict):
        parts["lr"] = parts["lr"][str(shots)]
    return json.dumps(parts, sort_keys=True)


def load(paths: list[str]) -> list[dict]:
    rows = []
    for path in paths:
        for line in Path(path).read_text().splitlines():
            if line.strip():
                rows.append(json.loads(line))
    return rows


def fmt(pd) -> str:
    if pd.n == 0:
        return "n/a"
    if not pd.has_ci:
        return f"{pd.mean * 100:+.2f} (n=1)"
    mark = " *" if pd.low > 0 else (" -" if pd.high < 0 else "")
    return f"{pd.mean * 100:+.2f} [{pd.low * 100:+.2f}, {pd.high * 100:+.2f}]{mark}"


def table(rows: list[dict], metric: str = "val_top1", designs: list[str] | None = None) -> str:
    base: dict = defaultdict(dict)  # (recipe, shots, held) -> seed -> value
    cells: dict = defaultdict(dict)  # (design, variant, shots, held) -> seed -> value
    recipes = {}
    for r in rows:
        held = tuple(r["held_out"])
        value = r.get(metric)
        if isinstance(value, dict):
            value = value.get("h")
        if value is None:
            continue
        if r["variant"] == "baseline":
            base[(recipe(r["cfg"], r["shots"]), r["shots"], held)][r["seed"]] = value
        cells[(r["design"], r["variant"], r["shots"], held)][r["seed"]] = value
        recipes[(r["design"], r["shots"], held)] = recipe(r["cfg"], r["shots"])
    lines = [f"metric: {metric}; * = interval above 0, - = below 0", "",
             "| design | shots | held out | variant | mean | n | - baseline [95% CI] | - kgnet [95% CI] |",
             "|---|---:|---|---|---:|---:|---|---|"]
    for (design, variant, shots, held), values in sorted(cells.items(), key=lambda kv: (kv[0][2], kv[0][0], kv[0][1])):
        if designs and design not in designs:
            continue
        b = base.get((recipes[(design, shots, held)], shots, held), {})
        kg = cells.get((design, "kgnet", shots, held), {})
        d = describe(list(values.values()))
        vs_b = fmt(paired_difference(values, b)) if variant != "baseline" else ""
        vs_k = fmt(paired_difference(values, kg)) if variant not in ("baseline", "kgnet") else ""
        lines.append(f"| {design} | {shots} | {','.join(map(str, held))} | {variant} | {d.mean * 100:.2f} | "
                     f"{d.n} | {vs_b} | {vs_k} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--design", nargs="*")
    parser.add_argument("--metric", default="val_top1")
    args = parser.parse_args()
    print(table(load(args.files), args.metric, args.design))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
