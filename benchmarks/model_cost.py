"""Benchmark: what knowledge injection costs over its baseline, on CPU (or `--device cuda`), in one run.

For 28x28 grayscale and 32x32 RGB inputs, batch 128, backbone resnet18 (`--backbone` picks
another timm model) with the default small-input option, it measures the knowledge-injected
model (default config: all three scales over the shipped Fashion-MNIST ontology) against the
baseline built from the same config:

- training step time: forward, cross-entropy (+ the stage-2 alignment term for kgnet, as the
  trainer adds it), backward, AdamW step;
- inference time: eval mode, `torch.inference_mode()`, node embeddings cached;
- peak memory: on the CPU, each model trained for a few steps in a fresh process, peak RSS
  (Linux VmHWM) after the imports (the peak is reset once torch and the model are loaded); on
  CUDA, `torch.cuda.max_memory_allocated` over a few training steps (reset before them).

Timing is interleaved (baseline, kgnet, kgnet, baseline, ...) after a warm-up, so load from
other processes hits both alike; the ratio reported is the median of the per-round ratios
(the ratio of the medians is recorded too). 2 threads, as on the project's machines (the CLI
sets them; `measure()` keeps the caller's). `measure()` is what `benchmarks.run` calls for its
cost cells.
Targets: training step ratio <= 1.15, inference ratio <= 1.05.

`--stems` also times the small-input choices for resnet18 (ImageNet stem, output_stride 16
and 8, max-pool dropped), the measurement behind `kgnet.models.backbone`'s default.

    python benchmarks/model_cost.py [--rounds 15] [--stems] [--backbone resnet18] [--device cpu]
                                    [--out benchmarks/results/model_cost.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kgnet.atomic import write_text_atomic  # noqa: E402
from kgnet.config import Config  # noqa: E402
from kgnet.data.cards import load_card  # noqa: E402
from kgnet.kg.build import build_class_graph  # noqa: E402
from kgnet.models import KgnetModel, create_model  # noqa: E402

BATCH = 128
INPUTS = {"28x28 gray": (1, 28), "32x32 rgb": (3, 32)}
TARGETS = {"train_step_ratio": 1.15, "inference_ratio": 1.05}

MEMORY_PHASE = r"""
import json, sys
sys.path.insert(0, sys.argv[4])
from benchmarks.model_cost import build_models, train_step, status_mb
import torch
torch.set_num_threads(int(sys.argv[7]))
variant, chans, size, backbone, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[5], int(sys.argv[6])
models = build_models(chans, size, backbone=backbone)
model = models[variant]
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
images, labels = torch.randn(batch, chans, size, size), torch.randint(0, 10, (batch,))
rss0 = status_mb("VmRSS")
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")  # reset the peak so it measures training, not imports
for _ in range(3):
    train_step(model, optimizer, images, labels)
print(json.dumps({"peak_rss_mb": status_mb("VmHWM"), "rss_before_mb": rss0}))
"""


def status_mb(field: str) -> float:
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def build_models(in_chans: int, size: int, config: Config | None = None,
                 backbone: str = "resnet18") -> dict[str, KgnetModel]:
    """The baseline and the knowledge-injected model for the Fashion-MNIST classes."""
    if config is None:
        config = Config()
        config.model.backbone = backbone  # the measured setup is resnet18; the CLI default is resnet10t
    card = load_card("fashion_mnist")
    graph = build_class_graph(card.ontology, card.classes, wnids=card.wnids, hops=config.knowledge.hops)
    return {
        "baseline": create_model(config, graph, in_chans=in_chans, image_size=size, baseline=True),
        "kgnet": create_model(config, graph, in_chans=in_chans, image_size=size),
    }


def train_step(model: KgnetModel, optimizer: torch.optim.Optimizer, images: torch.Tensor,
               labels: torch.Tensor, align_weight: float = 0.1, temperature: float = 0.1) -> None:
    """One stage-2 step: cross-entropy, plus InfoNCE of z against the class nodes for kgnet."""
    out = model(images)
    loss = F.cross_entropy(out.logits, labels)
    if out.class_embeddings is not None:
        similarity = F.normalize(out.embedding, dim=-1) @ F.normalize(out.class_embeddings, dim=-1).T
        loss = loss + align_weight * F.cross_entropy(similarity / temperature, labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def interleaved(steps: dict[str, Callable[[], None]], rounds: int, warmup: int = 3,
                sync: Callable[[], None] = lambda: None) -> dict[str, list[float]]:
    """Seconds per call of each step, alternating the order every round (ABBA).

    `sync` waits for queued device work (`torch.cuda.synchronize` on a GPU) before each clock read.
    """
    names = list(steps)
    for _ in range(warmup):
        for name in names:
            steps[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            sync()
            start = time.perf_counter()
            steps[name]()
            sync()
            times[name].append(time.perf_counter() - start)
    return times


def summarise(times: dict[str, list[float]]) -> dict[str, float]:
    base, kg = times["baseline"], times["kgnet"]
    return {
        "baseline_median_s": statistics.median(base),
        "kgnet_median_s": statistics.median(kg),
        "ratio": statistics.median(k / b for k, b in zip(kg, base)),
        "ratio_of_medians": statistics.median(kg) / statistics.median(base),
    }


def measure_input(in_chans: int, size: int, rounds: int, backbone: str = "resnet18", batch: int = BATCH,
                  device: str = "cpu") -> dict:
    """Training step, inference and peak memory of kgnet vs its baseline for one input shape."""
    torch.manual_seed(0)
    dev = torch.device(device)
    models = {name: m.to(dev) for name, m in build_models(in_chans, size, backbone=backbone).items()}
    images = torch.randn(batch, in_chans, size, size, device=dev)
    labels = torch.randint(0, 10, (batch,), device=dev)
    optimizers = {name: torch.optim.AdamW(m.parameters(), lr=1e-3) for name, m in models.items()}
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    for model in models.values():
        model.train()
    train = interleaved(
        {name: (lambda n=name: train_step(models[n], optimizers[n], images, labels)) for name in models}, rounds,
        sync=sync)

    def infer(model: KgnetModel) -> None:
        with torch.inference_mode():
            model(images)

    for model in models.values():
        model.eval()
    inference = interleaved({name: (lambda n=name: infer(models[n])) for name in models}, 4 * rounds, sync=sync)
    with torch.inference_mode():
        out = models["kgnet"](images[:2])
    if dev.type == "cuda":
        memory = {name: cuda_peak_memory(models[name], optimizers[name], images, labels) for name in models}
    else:
        memory = {name: peak_memory(name, in_chans, size, backbone, batch) for name in models}
    return {
        "tokens": list(out.token_grid),
        "graph_nodes": len(models["kgnet"].knowledge.node_ids),
        "attention_tokens": int(out.attention.shape[-1]),
        "params": {name: m.param_counts() for name, m in models.items()},
        "train_step": summarise(train),
        "inference": summarise(inference),
        "peak_memory_mb": memory,
        "peak_memory_method": MEMORY_METHOD["cuda" if dev.type == "cuda" else "cpu"],
    }


MEMORY_METHOD = {
    "cpu": "peak RSS (Linux VmHWM) of a fresh process over 3 training steps, reset after the imports",
    "cuda": "torch.cuda.max_memory_allocated over 3 training steps, reset before them",
}


def peak_memory(variant: str, in_chans: int, size: int, backbone: str = "resnet18", batch: int = BATCH) -> dict:
    """Peak RSS of `variant` training for a few steps in a fresh process (CPU)."""
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_PHASE, variant, str(in_chans), str(size), str(REPO), backbone, str(batch),
         str(torch.get_num_threads())],
        capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def cuda_peak_memory(model: KgnetModel, optimizer: torch.optim.Optimizer, images: torch.Tensor,
                     labels: torch.Tensor) -> dict:
    """Peak allocated CUDA memory of a few training steps, in MB."""
    model.train()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    for _ in range(3):
        train_step(model, optimizer, images, labels)
    torch.cuda.synchronize()
    return {"peak_allocated_mb": torch.cuda.max_memory_allocated() / 2**20, "allocated_before_mb": before / 2**20}


def peak_mb(entry: dict) -> float:
    """The peak memory figure of a `peak_memory_mb` entry, whichever method measured it."""
    return entry.get("peak_rss_mb", entry.get("peak_allocated_mb"))


def machine(device: str = "cpu") -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "load_average_before": os.getloadavg(),
            "device": device}
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def measure(backbone: str = "resnet18", inputs: dict[str, tuple[int, int]] | None = None, rounds: int = 15,
            batch: int = BATCH, device: str = "cpu", stems: bool = False) -> dict:
    """The whole measurement as one JSON-ready dict (what the CLI writes)."""
    inputs = INPUTS if inputs is None else inputs
    results: dict = {
        "machine": machine(device),
        "setup": {"backbone": backbone, "batch": batch, "rounds": rounds, "device": device,
                  "config": "defaults (small_input, output_stride 16, all scales, Fashion-MNIST ontology)"},
        "targets": TARGETS,
        "inputs": {},
    }
    for label, (in_chans, size) in inputs.items():
        results["inputs"][label] = measure_input(in_chans, size, rounds, backbone, batch, device)
    if stems:
        results["stems"] = measure_stems(rounds)
    results["machine"]["load_average_after"] = os.getloadavg()
    results["met"] = all(
        r[kind]["ratio"] <= TARGETS[f"{'train_step' if kind == 'train_step' else 'inference'}_ratio"]
        for r in results["inputs"].values() for kind in ("train_step", "inference"))
    return results


def measure_stems(rounds: int) -> dict:
    """Training step time of resnet18's small-input choices, batch 128, both input types."""
    import timm

    def variants(in_chans: int) -> dict[str, torch.nn.Module]:
        nopool = timm.create_model("resnet18", num_classes=10, in_chans=in_chans)
        nopool.maxpool = torch.nn.Identity()
        return {
            "imagenet stem (stride 32)": timm.create_model("resnet18", num_classes=10, in_chans=in_chans),
            "output_stride 16 (default)": timm.create_model("resnet18", num_classes=10, in_chans=in_chans,
                                                             output_stride=16),
            "output_stride 8": timm.create_model("resnet18", num_classes=10, in_chans=in_chans, output_stride=8),
            "max-pool dropped": nopool,
        }

    results = {}
    for label, (in_chans, size) in INPUTS.items():
        models = variants(in_chans)
        images, labels = torch.randn(BATCH, in_chans, size, size), torch.randint(0, 10, (BATCH,))
        optimizers = {name: torch.optim.AdamW(m.parameters(), lr=1e-3) for name, m in models.items()}

        def step(name: str) -> None:
            loss = F.cross_entropy(models[name](images), labels)
            optimizers[name].zero_grad(set_to_none=True)
            loss.backward()
            optimizers[name].step()

        times = interleaved({name: (lambda n=name: step(n)) for name in models}, rounds, warmup=2)
        reference = times["imagenet stem (stride 32)"]
        results[label] = {
            name: {
                "grid": list(models[name].forward_features(images[:2]).shape[-2:]),
                "train_step_median_s": statistics.median(t),
                "vs_imagenet_stem": statistics.median(a / b for a, b in zip(t, reference)),
            }
            for name, t in times.items()
        }
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15,
                        help="timed training rounds per model (inference: 4x as many)")
    parser.add_argument("--stems", action="store_true", help="also time resnet18's small-input options")
    parser.add_argument("--backbone", default="resnet18", help="timm model measured (default resnet18)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/model_cost.json"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    results = measure(args.backbone, INPUTS, args.rounds, BATCH, args.device, args.stems)

    print(f"{'input':<12} {'tokens':>6} {'train s base/kgnet':>19} {'ratio':>6} {'infer s base/kgnet':>19} "
          f"{'ratio':>6} {'peak MB base/kgnet':>23}")
    for label, r in results["inputs"].items():
        t, i, m = r["train_step"], r["inference"], r["peak_memory_mb"]
        print(f"{label:<12} {'x'.join(map(str, r['tokens'])):>6} "
              f"{t['baseline_median_s']:>9.3f}/{t['kgnet_median_s']:<9.3f} {t['ratio']:>6.3f} "
              f"{i['baseline_median_s']:>9.4f}/{i['kgnet_median_s']:<9.4f} {i['ratio']:>6.3f} "
              f"{peak_mb(m['baseline']):>11.0f}/{peak_mb(m['kgnet']):<11.0f}")
    print(f"targets: train step ratio <= {TARGETS['train_step_ratio']}, inference ratio <= "
          f"{TARGETS['inference_ratio']}: {'met' if results['met'] else 'MISSED'}")
    for label, stems in results.get("stems", {}).items():
        for name, s in stems.items():
            print(f"stem {label:<12} {name:<28} grid {s['grid']} {s['train_step_median_s']:.3f} s "
                  f"({s['vs_imagenet_stem']:.2f}x)")
    write_text_atomic(args.out, json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
