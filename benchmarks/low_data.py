"""Low-data check, now part of the quick suite: Fashion-MNIST, 10 images per class, baseline vs kgnet.

A thin wrapper over `python -m benchmarks.run --suite quick --only '^low10-(baseline|kgnet)-s'`:
the same cells (same budget, cached and resumable) as the quick suite's `low10` regime, with the
report written into `<out>/report/` (or `docs/` for the default results folder).

    python benchmarks/low_data.py [--seeds 0 1 2] [--out benchmarks/results/quick]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", help="results folder (default benchmarks/results/quick)")
    args = parser.parse_args(argv)
    forwarded = ["--suite", "quick", "--only", r"^low10-(baseline|kgnet)-s", "--seeds", *map(str, args.seeds)]
    if args.out:
        forwarded += ["--out", args.out]
    return run.main(forwarded)


if __name__ == "__main__":
    sys.exit(main())
