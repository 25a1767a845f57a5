"""Low-data tuning sweep: which knowledge settings help kgnet at k images per class, chosen on validation.

Trains the kgnet variant for every point of a small grid (prototype weight, alignment weight,
alignment epochs, temperature) and the baseline, over seeds, at `data.samples_per_class=k`, each
as its own `kgnet.train.run` in a worker process, several at a time. Settings are ranked by the mean
*validation* top-1 of the last epoch (1,200 held-back training images); the test top-1 is
recorded but never used to choose.

    python -m benchmarks.low_data_sweep --out benchmarks/results/low_data_sweep.json --jobs 8 --device cuda
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

BUDGET = ["train.batch_size=32", "train.epochs=30", "data.val_fraction=0.02"]
GRID = {
    "knowledge.prototype_weight": [0.5, 1.0],
    "train.align_weight": [0.1, 1.0],
    "train.align_epochs": [10, 30],
    "train.temperature": [0.1, 0.05],
}


def _run(variant: str, settings: dict, seed: int, k: int, device: str, root: Path) -> dict:
    """Train one point in a worker process (a fresh interpreter, so runs share no state)."""
    from kgnet.config import load_config
    from kgnet.errors import KgnetError
    from kgnet.train import run

    name = "-".join(f"{key.split('.')[-1]}={value}" for key, value in settings.items()) or "default"
    folder = root / f"{variant}-{name}-seed{seed}"
    overrides = [f"variants=[{variant}]", f"seed={seed}", f"data.samples_per_class={k}", f"train.device={device}",
                 *BUDGET, *(f"{key}={value}" for key, value in settings.items())]
    started = time.perf_counter()
    try:
        metrics = run(load_config(None, overrides), folder, progress=False)[variant]
    except KgnetError as err:
        return {"variant": variant, "settings": settings, "seed": seed, "error": str(err)}
    with open(folder / variant / "log.csv", newline="") as handle:
        history = list(csv.DictReader(handle))
    return {"variant": variant, "settings": settings, "seed": seed, "val_top1": float(history[-1]["val_top1"]),
            "test_top1": metrics["top1"], "seconds": time.perf_counter() - started}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at the same time")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="benchmarks/results/low_data_sweep.json")
    args = parser.parse_args()

    points = [dict(zip(GRID, values)) for values in itertools.product(*GRID.values())]
    tasks = [("baseline", {}, s) for s in args.seeds] + [("kgnet", p, s) for p in points for s in args.seeds]
    started = time.perf_counter()
    spawn = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp, ProcessPoolExecutor(args.jobs, mp_context=spawn) as pool:
        futures = [pool.submit(_run, v, p, s, args.per_class, args.device, Path(tmp)) for v, p, s in tasks]
        results = []
        for i, future in enumerate(futures, 1):
            results.append(future.result())
            r = results[-1]
            said = r.get("error", "").splitlines()[-1:] if "error" in r else [f"val {r['val_top1']:.4f} test {r['test_top1']:.4f}"]
            print(f"[{i}/{len(tasks)}] {r['variant']} {r['settings']} seed {r['seed']}: {said}", flush=True)

    rows = []
    for variant, settings in [("baseline", {})] + [("kgnet", p) for p in points]:
        runs = [r for r in results if r["variant"] == variant and r["settings"] == settings and "error" not in r]
        if runs:
            rows.append({"variant": variant, "settings": settings, "n": len(runs),
                         "val_top1": statistics.mean(r["val_top1"] for r in runs),
                         "test_top1": statistics.mean(r["test_top1"] for r in runs)})
    rows.sort(key=lambda row: -row["val_top1"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"per_class": args.per_class, "seeds": args.seeds, "budget": BUDGET, "grid": GRID,
                               "device": args.device, "wall_seconds": round(time.perf_counter() - started),
                               "ranked_by_val": rows, "runs": results}, indent=2) + "\n")
    for row in rows:
        print(f"{row['variant']:<9} {json.dumps(row['settings']):<110} val {100 * row['val_top1']:6.2f}  "
              f"test {100 * row['test_top1']:6.2f}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
