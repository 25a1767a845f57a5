"""What kgnet's training engine costs: images per second of `kgnet.train`'s baseline against a
plain PyTorch loop over the same model, data tensors, optimiser and batch (issue 24).

    python benchmarks/engine_overhead.py                   # 3 interleaved rounds, 5,000 images, batch 128
    python benchmarks/engine_overhead.py --rounds 5 --threads 1

Each round trains one epoch both ways in this process, kgnet first then the plain loop, on
Fashion-MNIST without augmentation (the plain loop has none to do). kgnet's number is its own
`train_images_per_second` (the training loop: data loading, steps, its running sums and
NaN checks; not validation or checkpoints, which the loop does not time). The plain loop is
forward, cross-entropy, backward, AdamW step over a tensor of the same preprocessed images in a
shuffled order. The ratio (plain / kgnet images per second; > 1: the engine is slower) is the
median over rounds; the goal is at most x1.05. Writes `benchmarks/results/engine_overhead.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from kgnet.atomic import write_text_atomic  # noqa: E402
from kgnet.config import load_config  # noqa: E402
from kgnet.data.builder import build_datasets  # noqa: E402
from kgnet.engine.trainer import make_optimizer  # noqa: E402
from kgnet.models.factory import create_model  # noqa: E402
from kgnet.train import run  # noqa: E402

GOAL = 1.05


def _config(per_class: int, batch: int, seed: int):
    return load_config(None, ["variants=[baseline]", f"seed={seed}", f"data.samples_per_class={per_class}",
                              "data.augment=false", "data.num_workers=0", "data.val_fraction=0.005",
                              "data.test_per_class=10", "train.analysis=none", "train.epochs=1", "train.min_steps=0", f"train.batch_size={batch}", "train.device=cpu"])


def kgnet_round(per_class: int, batch: int, seed: int) -> float:
    """`kgnet.train`'s own images per second for one epoch of the baseline."""
    with tempfile.TemporaryDirectory() as folder:
        metrics = run(_config(per_class, batch, seed), Path(folder) / "run", progress=False)
    return metrics["baseline"]["train_images_per_second"]


def plain_round(per_class: int, batch: int, seed: int) -> float:
    """A plain loop's images per second over the same images, model and optimiser."""
    config = _config(per_class, batch, seed)
    bundle = build_datasets(config.data, seed=seed, augment=False)
    images = torch.stack([bundle.train[i][0] for i in range(len(bundle.train))])
    labels = torch.as_tensor(bundle.train.labels)
    torch.manual_seed(seed)
    model = create_model(config, variant="baseline", num_classes=bundle.num_classes, in_chans=bundle.in_chans,
                         image_size=bundle.image_size, seen=bundle.seen_classes).train()
    optimizer = make_optimizer(model, config.train, torch.device("cpu"))
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    steps = len(images) // batch
    started = time.perf_counter()
    for step in range(steps):
        index = order[step * batch:(step + 1) * batch]
        loss = F.cross_entropy(model(images[index]).logits, labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return steps * batch / (time.perf_counter() - started)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-class", type=int, default=500, help="training images per class (default 500)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "engine_overhead.json"))
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.per_class < 1 or args.batch < 1:
        parser.error("--rounds, --per-class and --batch must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    rounds = []
    for r in range(args.rounds):
        kgnet = kgnet_round(args.per_class, args.batch, seed=r)
        plain = plain_round(args.per_class, args.batch, seed=r)
        rounds.append({"kgnet_images_per_second": kgnet, "plain_images_per_second": plain, "ratio": plain / kgnet})
        print(f"round {r + 1}/{args.rounds}: kgnet.train {kgnet:.1f} img/s, plain loop {plain:.1f} img/s, "
              f"ratio x{plain / kgnet:.3f}", flush=True)
    ratio = statistics.median(r["ratio"] for r in rounds)
    result = {"setup": {"data": "Fashion-MNIST, no augmentation", "train_images": 10 * args.per_class,
                        "batch": args.batch, "model": "the default baseline (resnet10t + linear head)",
                        "device": "cpu", "threads": torch.get_num_threads()},
              "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "rounds": rounds, "ratio_median": ratio, "goal": GOAL, "met": ratio <= GOAL}
    write_text_atomic(Path(args.out), json.dumps(result, indent=2) + "\n")
    print(f"engine overhead: x{ratio:.3f} (median of {args.rounds} rounds; goal <= x{GOAL}): "
          f"{'met' if ratio <= GOAL else 'not met'}; written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
