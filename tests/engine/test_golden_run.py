"""Same seeds, same numbers: one tiny run of every registered variant, against committed metrics.

`golden_run.json` was written by this test (`KGNET_WRITE_GOLDEN=1`) before the parts refactor
of issue 33, so a refactor that changes what any variant computes (an initialisation order, a
default, a part built differently) fails here. Times are left out (they vary by machine);
everything else of metrics.json and of each variant's log.csv must agree to 1e-6.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
from pathlib import Path

import pytest

from conftest import settings

GOLDEN = Path(__file__).with_name("golden_run.json")
VARIANTS = ["baseline", "kgnet", "kgnet-composed", "kgnet-permuted", "kgnet-noknowledge", "kgnet-composed-permuted",
            "kgnet-shuffled", "kgnet-no-rgcn", "kgnet-no-infusion", "kgnet-no-text", "kgnet-prototype",
            "kgnet-category", "kgnet-relation", "kgnet-wide"]
#: A few optimiser steps of every variant, one class held out (the zero-shot numbers too).
OVERRIDES = (
    f"variants=[{','.join(VARIANTS)}]",
    "data.samples_per_class=10", "data.val_fraction=0.002", "data.test_per_class=10",
    "data.held_out_classes=[Sandal]", "train.gzsl_calibration=none",
    "train.epochs=2", "train.batch_size=15", "train.min_steps=0",
    "model.embed_dim=32", "model.output_stride=16", "train.analysis=none",
)


#: log.csv columns added after the golden run was written (issue 37): bookkeeping of how many
#: validation images and optimiser steps a row covers, not numbers a variant computes.
LATER_COLUMNS = ("val_images", "steps")


def _timeless(value):
    """`value` without the entries that measure time."""
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if not k.endswith(("seconds", "per_second"))}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


def _numbers(folder: Path) -> dict:
    metrics = json.loads((folder / "metrics.json").read_text())
    logs = {}
    for name in VARIANTS:
        with open(folder / name / "log.csv", newline="") as handle:
            logs[name] = [{k: float(v) for k, v in row.items() if k not in LATER_COLUMNS}
                          for row in csv.DictReader(handle)]
    return _timeless({"metrics": metrics, "logs": logs})


def _differences(got, want, path: str = "") -> list[str]:
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(got) != set(want):
            return [f"{path}: keys {sorted(set(got) ^ set(want)) if isinstance(got, dict) else got}"]
        return [d for k in want for d in _differences(got[k], want[k], f"{path}/{k}")]
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return [f"{path}: {got} != {want}"]
        return [d for i, (g, w) in enumerate(zip(got, want)) for d in _differences(g, w, f"{path}[{i}]")]
    if isinstance(want, float) and isinstance(got, (int, float)):
        return [] if math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-6) else [f"{path}: {got} != {want}"]
    return [] if got == want else [f"{path}: {got!r} != {want!r}"]


def test_every_variant_computes_what_it_did(tmp_path):
    from kgnet.train import main

    folder = tmp_path / "golden"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main([*settings(*OVERRIDES), "--out", str(folder)]) == 0
    got = _numbers(folder)
    if os.environ.get("KGNET_WRITE_GOLDEN"):
        GOLDEN.write_text(json.dumps({"commit": "written before issue 33", "overrides": list(OVERRIDES), **got},
                                     indent=1) + "\n")
        pytest.skip(f"wrote {GOLDEN}")
    want = json.loads(GOLDEN.read_text())
    differences = _differences(got, {k: want[k] for k in ("metrics", "logs")})
    assert not differences, f"{len(differences)} numbers changed, e.g. " + "; ".join(differences[:8])
