"""Benchmark: kgnet's CUDA training path on one GPU, kgnet against its baseline (issue 24).

What it runs is the trainer's own step (`kgnet.engine.trainer.TrainingStep`: bf16 autocast with
`train.amp`, `torch.compile` with `train.compile`, fused AdamW) on models wrapped the way
`train_variant` wraps them under torchrun (`kgnet.engine.trainer.data_parallel`:
DistributedDataParallel), in an nccl process group of one process, so every gradient goes
through nccl's all-reduce as it would on N GPUs. ResNet-18 (`model.backbone=resnet18`), at
32 px batch 256 (the small-input stem, kgnet's default for small images) and at 224 px batch 128
(timm's ImageNet stem), for `fp32-eager`, `bf16-eager` and `bf16-compiled`.

Each model is timed alone: blocks of `--steps` steps of one model, then a block of the other
(ABBA order), never the two within one block, each block between two `torch.cuda.synchronize`.
Images per second come from the median block; the ratio is kgnet's step time over the
baseline's (goal: <= 1.15). The losses are checked to be finite.

    python benchmarks/gpu_path.py [--steps 20] [--blocks 6] [--variant kgnet] [--sizes 32 224]
                                  [--settings fp32-eager bf16-eager bf16-compiled]
                                  [--out benchmarks/results/gpu/gpu_path.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.model_cost import knowledge_graph  # noqa: E402
from kgnet.atomic import write_text_atomic  # noqa: E402
from kgnet.config import Config  # noqa: E402
from kgnet.engine.trainer import EpochTotals, TrainingStep, data_parallel, make_optimizer  # noqa: E402
from kgnet.models import create_model  # noqa: E402

#: (label, channels, size, batch, small_input)
CASES = (("32 px, batch 256", 3, 32, 256, True), ("224 px, batch 128", 3, 224, 128, False))
#: setting -> (train.amp, train.compile)
SETTINGS = {"fp32-eager": (False, False), "bf16-eager": (True, False), "bf16-compiled": (True, True)}
RATIO_GOAL = 1.15


def join_nccl_group(device: torch.device) -> None:
    """An nccl process group of this one process (torchrun's variables when it launched us)."""
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29533")
    torch.cuda.set_device(device)
    dist.init_process_group("nccl", rank=int(os.environ.get("RANK", 0)), world_size=int(os.environ.get("WORLD_SIZE", 1)))


def training_step(config: Config, graph, chans: int, size: int, *, variant: str, device: torch.device):
    """The trainer's step for one model, in DDP, after any alignment epochs; returns (step(images,
    labels), totals, parameter count)."""
    model = create_model(config, graph, variant=variant, in_chans=chans, image_size=size).to(device).train()
    optimizer = make_optimizer(model, config.train, device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    seen = torch.ones(len(graph.class_names), dtype=torch.bool, device=device)
    step = TrainingStep(data_parallel(model, device), model.head, optimizer, scheduler, config.train, seen=seen)
    totals = EpochTotals(device)
    epoch = model.head.align_epochs  # the cross-entropy epochs (with the alignment term where the head has one)
    return (lambda images, labels: step(images, labels, totals, epoch)), totals, sum(
        p.numel() for p in model.parameters())


def measure_case(case: tuple, setting: str, variant: str, steps: int, blocks: int, warmup: int,
                 device: torch.device) -> dict:
    """Baseline and `variant` images per second for one case (see CASES) and setting (see SETTINGS),
    in the process group already joined; any device (the tests run it on the CPU, over gloo)."""
    label, chans, size, batch, small = case
    # A fresh start for dynamo per case, as in a run of its own: code compiled for one image size
    # would otherwise be recompiled with dynamic sizes for the next (which inductor 2.11 fails on).
    torch._dynamo.reset()
    config = Config()
    config.model.backbone, config.model.small_input = "resnet18", small
    config.train.amp, config.train.compile = SETTINGS[setting]
    graph = knowledge_graph("fashion_mnist", REPO, variant)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    images = torch.randn(batch, chans, size, size, device=device)
    labels = torch.randint(0, len(graph.class_names), (batch,), device=device)
    models = {"baseline": training_step(config, graph, chans, size, variant="baseline", device=device),
              "kgnet": training_step(config, graph, chans, size, variant=variant, device=device)}
    seconds: dict[str, list[float]] = {name: [] for name in models}
    first_steps: dict[str, float] = {}
    for name, (step, _, _) in models.items():  # warm-up: compilation, cuDNN's autotuning, the allocator
        sync()
        started = time.perf_counter()
        for _ in range(warmup):
            step(images, labels)
        sync()
        first_steps[name] = time.perf_counter() - started
    for block in range(blocks):
        order = list(models) if block % 2 == 0 else list(reversed(models))
        for name in order:
            step = models[name][0]
            sync()
            started = time.perf_counter()
            for _ in range(steps):
                step(images, labels)
            sync()
            seconds[name].append((time.perf_counter() - started) / steps)
    result = {"batch": batch, "image_size": size, "small_input": small, "amp": config.train.amp,
              "compile": config.train.compile, "warmup_seconds": first_steps}
    for name, (_, totals, params) in models.items():
        sums = totals.read()
        if sums["bad_step"] >= 0:
            raise RuntimeError(f"{label}, {setting}: {name}'s loss was not finite at step {sums['bad_step']:.0f}")
        median = statistics.median(seconds[name])
        result[name] = {"step_seconds": seconds[name], "median_step_seconds": median,
                        "images_per_second": batch / median, "mean_loss": sums["loss"] / sums["images"],
                        "params": params}
    result["kgnet_over_baseline_step_time"] = result["kgnet"]["median_step_seconds"] / result["baseline"][
        "median_step_seconds"]
    result["met"] = result["kgnet_over_baseline_step_time"] <= RATIO_GOAL
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="training steps per timed block")
    parser.add_argument("--blocks", type=int, default=6, help="timed blocks per model")
    parser.add_argument("--warmup", type=int, default=8, help="untimed steps per model first")
    parser.add_argument("--variant", default="kgnet", help="the knowledge variant timed against the baseline")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[case[2] for case in CASES],
                        choices=[case[2] for case in CASES], help="image sizes measured")
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/gpu/gpu_path.json"))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_path: no CUDA device here; this benchmark measures the GPU path only", file=sys.stderr)
        return 2
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    join_nccl_group(device)
    torch.backends.cudnn.benchmark = True
    results = {"gpu": torch.cuda.get_device_name(device), "torch": torch.__version__, "python": platform.python_version(),
               "backend": dist.get_backend(), "world_size": dist.get_world_size(), "variant": args.variant,
               "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "ratio_goal": RATIO_GOAL, "cases": {}}
    for case in (case for case in CASES if case[2] in args.sizes):
        for setting in args.settings:
            key = f"{case[0]}, {setting}"
            r = measure_case(case, setting, args.variant, args.steps, args.blocks, args.warmup, device)
            results["cases"][key] = r
            print(f"{key:<32} baseline {r['baseline']['images_per_second']:>8.0f} img/s  {args.variant} "
                  f"{r['kgnet']['images_per_second']:>8.0f} img/s  step time x{r['kgnet_over_baseline_step_time']:.3f} "
                  f"({'met' if r['met'] else 'NOT met'}; goal <= x{RATIO_GOAL})", flush=True)
            torch.cuda.empty_cache()
            write_text_atomic(Path(args.out), json.dumps(results, indent=2) + "\n")  # each case kept as it ends
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
