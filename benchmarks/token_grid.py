"""The default run at two token grids: top-1 and cost before and after the resolution change (issue 22).

At 28 px the small-input option used to give resnet10t output stride 16, a 2x2 token grid, too
coarse for a map to locate a part of a garment. Output stride 4 (timm's 8 with the stem
max-pool dropped) gives 7x7. This runs the default run (`python -m kgnet.train`: baseline and
kgnet, 5 images per class) at each stride and seed, and times both models' training step and
inference at the default batch (25) and at 128, interleaved, as `benchmarks/model_cost.py` does.

    python benchmarks/token_grid.py                        # strides 16 and 4, seeds 0-2
    python benchmarks/token_grid.py --strides 16 8 4 --seeds 0 1 2 3 --runs /tmp/grid

Run folders are kept under `--runs` and reused when their `metrics.json` exists, so an
interrupted measurement resumes. Validation top-1 (the last epoch's, on the run's held-out
training images) is what a choice reads; test top-1 is recorded beside it. Paired differences
by seed use `benchmarks/stats.py`. Writes `benchmarks/results/token_grid.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Sequence

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import model_cost  # noqa: E402
from benchmarks.default_run import last_val_top1, train  # noqa: E402
from benchmarks.stats import describe, paired_difference  # noqa: E402
from kgnet.atomic import write_text_atomic  # noqa: E402
from kgnet.config import Config  # noqa: E402

VARIANTS = ("baseline", "kgnet")
#: The default run's batch, and the cost benchmark's.
BATCHES = (Config().train.batch_size, model_cost.BATCH)


def run_scores(folder: Path) -> dict[str, dict[str, float]]:
    """Per variant: last-epoch validation top-1, test top-1 (%) and training seconds."""
    metrics = json.loads((folder / "metrics.json").read_text())
    return {variant: {"val_top1": last_val_top1(folder / variant), "test_top1": 100 * metrics[variant]["top1"],
                      "train_seconds": metrics[variant]["train_seconds"]} for variant in VARIANTS}


def cost(stride: int, rounds: int, workdir: Path) -> dict:
    """Training step and inference of the baseline and kgnet at `stride`, 28 px gray, per batch."""
    config = Config()
    config.model.output_stride = stride
    graph = model_cost.knowledge_graph(model_cost.DEFAULT_GRAPH, workdir)
    result = {}
    for batch in BATCHES:
        r = model_cost.measure_input(1, 28, rounds, batch=batch, graph=graph, memory=False, config=config)
        result[f"batch{batch}"] = {"tokens": r["tokens"], "train_step": r["train_step"], "inference": r["inference"]}
        print(f"output stride {stride}, batch {batch}: {r['tokens'][0]}x{r['tokens'][1]} tokens, baseline step "
              f"{1000 * r['train_step']['baseline_median_s']:.0f} ms, kgnet/baseline step x{r['train_step']['ratio']:.3f}, "
              f"inference x{r['inference']['ratio']:.3f}", flush=True)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strides", type=int, nargs="+", default=[16, 4], help="output strides; the first is 'before'")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rounds", type=int, default=15, help="timing rounds per batch")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for the timing")
    parser.add_argument("--runs", default=str(Path(tempfile.gettempdir()) / "kgnet-token-grid"),
                        help="where the run folders go (reused when complete)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "token_grid.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    strides = {}
    for stride in args.strides:
        per_seed = {seed: run_scores(train(runs / f"os{stride}_s{seed}", f"model.output_stride={stride}",
                                                  f"seed={seed}")) for seed in args.seeds}
        strides[str(stride)] = {
            "runs": {str(s): v for s, v in per_seed.items()},
            "mean": {v: {k: describe([per_seed[s][v][k] for s in args.seeds]).to_dict()
                         for k in ("val_top1", "test_top1", "train_seconds")} for v in VARIANTS},
            "kgnet_minus_baseline_val": paired_difference(
                {s: per_seed[s]["kgnet"]["val_top1"] for s in args.seeds},
                {s: per_seed[s]["baseline"]["val_top1"] for s in args.seeds}).to_dict(),
        }
        print(f"output stride {stride}: val top-1 " + ", ".join(
            f"{v} {strides[str(stride)]['mean'][v]['val_top1']['mean']:.2f}%" for v in VARIANTS), flush=True)
    before = args.strides[0]
    for stride in args.strides[1:]:
        strides[str(stride)]["minus_before_val"] = {v: paired_difference(
            {s: float(strides[str(stride)]["runs"][str(s)][v]["val_top1"]) for s in args.seeds},
            {s: float(strides[str(before)]["runs"][str(s)][v]["val_top1"]) for s in args.seeds}).to_dict()
            for v in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        for stride in args.strides:
            strides[str(stride)]["cost"] = cost(stride, args.rounds, Path(tmp))
    result = {"setup": {"run": "python -m kgnet.train --set model.output_stride=S --set seed=N (the default run)",
                        "seeds": args.seeds, "before": before, "threads": args.threads,
                        "timing": "interleaved rounds, median of per-round kgnet/baseline ratios (model_cost.py)"},
              "strides": strides}
    write_text_atomic(Path(args.out), json.dumps(result, indent=2) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
