"""Low-data check: Fashion-MNIST with k images per class, baseline vs kgnet, over seeds.

Runs `python -m kgnet.train` once per seed (each run trains both variants on the same
images), then reports test top-1 as mean +- std and the paired difference per seed. The test
set is only read at the end of each run; nothing is selected on it.

    python benchmarks/low_data.py [--per-class 10] [--seeds 0 1 2] [--out benchmarks/results/low_data.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET = [
    "--set", "train.batch_size=32",
    "--set", "train.align_epochs=10",
    "--set", "train.epochs=30",
    "--set", "data.val_fraction=0.02",
]
"""About 120 optimiser steps on 100 images; a small validation split keeps epochs cheap."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default="benchmarks/results/low_data.json")
    parser.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE",
                        help="extra config overrides for every run")
    args = parser.parse_args()

    runs = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            folder = Path(tmp) / f"seed{seed}"
            command = [sys.executable, "-m", "kgnet.train", *BUDGET, "--set", f"data.samples_per_class={args.per_class}",
                       "--set", f"seed={seed}", "--out", str(folder)]
            for extra in args.extra:
                command += ["--set", extra]
            print(f"seed {seed}: training baseline and kgnet ...", flush=True)
            subprocess.run(command, check=True, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            runs[seed] = json.loads((folder / "metrics.json").read_text())
    seconds = time.perf_counter() - started

    def top1(variant: str) -> list[float]:
        return [100 * runs[s][variant]["top1"] for s in args.seeds]

    base, kg = top1("baseline"), top1("kgnet")
    diffs = [k - b for k, b in zip(kg, base)]

    def summary(values: list[float]) -> dict:
        return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "values": values}

    report = {
        "dataset": "fashion_mnist", "images_per_class": args.per_class, "seeds": args.seeds,
        "budget": BUDGET + [f"--set {e}" for e in args.extra],
        "baseline_top1": summary(base), "kgnet_top1": summary(kg), "kgnet_minus_baseline": summary(diffs),
        "wall_seconds": round(seconds),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"Fashion-MNIST, {args.per_class} images per class, seeds {args.seeds} ({seconds / 60:.1f} min)")
    for name, values in (("baseline", base), ("kgnet", kg), ("kgnet - baseline", diffs)):
        s = summary(values)
        print(f"  {name:<17} {s['mean']:6.2f} +- {s['std']:.2f}   ({', '.join(f'{v:.2f}' for v in values)})")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
