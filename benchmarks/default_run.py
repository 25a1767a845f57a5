"""The default run (`python -m kgnet.train`) with a few settings changed, as the research benchmarks train it.

`benchmarks/token_grid.py` and `benchmarks/concept_sparsity.py` each compare settings of the
default run over seeds; both train through the command line (what a user runs) and reuse a
folder whose `metrics.json` is there, so an interrupted measurement resumes.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


#: Settings every measurement adds: the last epoch's val top-1 (`last_val_top1`) chooses between
#: settings, so each epoch scores the whole validation split, not the default sample.
MEASURED = ("train.val_images=null",)


def train(folder: Path, *overrides: str) -> Path:
    """`folder`, holding the default run with `overrides` (`key=value`), trained unless complete."""
    if not (folder / "metrics.json").exists():
        log = folder.with_suffix(".log")
        with log.open("w") as out:
            done = subprocess.run([sys.executable, "-m", "kgnet.train", "--out", str(folder),
                                   *(arg for item in (*MEASURED, *overrides) for arg in ("--set", item))],
                                  cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        if done.returncode != 0:
            raise SystemExit(f"the default run with {' '.join(overrides)} failed: see {log}")
    return folder


def last_val_top1(variant_folder: Path) -> float:
    """The last epoch's validation top-1 (%) of a variant, from its log.csv."""
    with (variant_folder / "log.csv").open() as f:
        return 100 * float(list(csv.DictReader(f))[-1]["val_top1"])
