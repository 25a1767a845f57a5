"""Benchmark: what knowledge injection costs over its baseline, on CPU (or `--device cuda`), in one run.

For 28x28 grayscale and 32x32 RGB inputs, batch 128, the default backbone (resnet10t;
`--backbone` picks another timm model) with the default small-input option, it measures the
knowledge-injected model (default config: all three scales) against the baseline built from the
same config, with three graphs as the knowledge, to show how the cost grows with the graph:

- `fashion_mnist`: the ten Fashion-MNIST classes on kg/fashion_mnist.ttl, 2 hops (88 nodes);
- `imagenet1k`: the 1,000 ImageNet-1k classes on kg/imagenet1k.ttl, 2 hops (2,946 nodes);
- `wordnet`: the 1,000 ImageNet-1k classes on the full WordNet 3.0 noun graph, every node in
  view (82,115 nodes; exported from WordNet at the start, as benchmarks/kg_compile.py does; the
  first run also encodes its 82,115 node texts, cached afterwards: 34 min measured on 2 busy
  cores, a few minutes on quiet ones).

For each graph and input:

- training step time: forward, cross-entropy (+ the stage-2 alignment term for kgnet, as the
  trainer adds it), backward, the trainer's AdamW step (fused);
- inference time: eval mode, `torch.inference_mode()`, node embeddings cached;
- peak memory: on the CPU, each model trained for a few steps in a fresh process, peak RSS
  (Linux VmHWM) after the imports (the peak is reset once torch and the model are loaded); on
  CUDA, `torch.cuda.max_memory_allocated` over a few training steps (reset before them);
- host syncs of one training step (`benchmarks/host_syncs.py`: the ATen ops and tensor methods
  that make the host wait for the device, counted on any device), split into the model's part
  (forward, losses, backward) and the optimizer step.

Timing is interleaved (baseline, kgnet, kgnet, baseline, ...) after a warm-up, so load from
other processes hits both alike; the ratio reported is the median of the per-round ratios
(the ratio of the medians is recorded too). The full WordNet graph gets a fifth of the rounds
(at least 3): its steps take seconds.

Also measured:

- `trainer_host_syncs`: host syncs per step of the real training loop
  (`kgnet.engine.trainer.train_variant`), from two short Fashion-MNIST runs that differ only in
  their number of steps (the per-epoch work cancels out), with the line that makes each;
- `layers`: forward + backward time of one R-GCN layer, kgnet's `RelationalConv`
  against PyG's `RGCNConv`, width 256, on each graph;
- `gpu`: on CUDA, ResNet-18 at 32 px batch 256 and at 224 px batch 128 (ImageNet stem), fp32
  and bf16 autocast, eager and `torch.compile`: images per second of kgnet and the baseline and
  their ratio, each pair interleaved; "no GPU" without one.

Targets (issue 13): training step ratio <= 1.10 and inference ratio <= 1.03 with the
Fashion-MNIST graph, <= 1.25 and <= 1.10 with the ImageNet-1k graph; the full WordNet graph is
reported whatever it is. `measure()` is what `benchmarks.run` calls for its cost cells.
`--stems` also times resnet18's small-input choices (ImageNet stem, output_stride 16 and 8,
max-pool dropped), the measurement behind `kgnet.models.backbone`'s default.

    python benchmarks/model_cost.py [--rounds 15] [--graphs fashion_mnist imagenet1k wordnet]
                                    [--inputs '28x28 gray'] [--no-layers] [--no-memory] [--stems] [--backbone resnet10t] [--device cpu]
                                    [--threads 2] [--out benchmarks/results/model_cost.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.host_syncs import HostSyncCounter  # noqa: E402
from kgnet.atomic import write_text_atomic  # noqa: E402
from kgnet.config import Config  # noqa: E402
from kgnet.data.cards import load_card  # noqa: E402
from kgnet.engine.trainer import make_optimizer  # noqa: E402
from kgnet.variants import VARIANTS  # noqa: E402
from kgnet.kg.build import build_class_graph  # noqa: E402
from kgnet.kg.graph import KnowledgeGraph  # noqa: E402
from kgnet.models import KgnetModel, create_model, graph_hops  # noqa: E402
from kgnet.models.backbone import SMALL_INPUT_OUTPUT_STRIDE  # noqa: E402

BATCH = 128
INPUTS = {"28x28 gray": (1, 28), "32x32 rgb": (3, 32)}
GRAPHS = {
    "fashion_mnist": "Fashion-MNIST classes, the card's ontology (kg/fashion_mnist_garments.ttl), the variant's hops",
    "imagenet1k": "ImageNet-1k classes, kg/imagenet1k.ttl, the variant's hops",
    "wordnet": "ImageNet-1k classes, full WordNet 3.0 noun graph (every node in view)",
}
DEFAULT_GRAPH = "fashion_mnist"
#: The knowledge-injected variant measured by default: the default `kgnet` (R-GCN, infusion, concept head).
VARIANT = "kgnet"
#: The old design (R-GCN, infusion, prototype head), which the profiling benchmarks take apart.
PROTOTYPE = "kgnet-prototype"
#: graph -> maximum train step and inference ratios (None: reported, no target); issue 20's
#: targets for the composed default.
TARGETS = {
    "fashion_mnist": {"train_step_ratio": 1.10, "inference_ratio": 1.05},
    "imagenet1k": {"train_step_ratio": 1.25, "inference_ratio": 1.10},
    "wordnet": None,
}

MEMORY_PHASE = r"""
import json, sys
sys.path.insert(0, sys.argv[4])
from benchmarks.model_cost import build_models, optimizer_for, train_step, status_mb
from kgnet.kg.graph import KnowledgeGraph
import torch
torch.set_num_threads(int(sys.argv[7]))
variant, chans, size, backbone, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[5], int(sys.argv[6])
graph = KnowledgeGraph.load(sys.argv[8])
model = build_models(chans, size, graph, backbone=backbone, variant=sys.argv[9])[variant]
optimizer = optimizer_for(model)
images = torch.randn(batch, chans, size, size)
labels = torch.randint(0, len(graph.class_names), (batch,))
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


def knowledge_graph(name: str, workdir: Path, variant: str = VARIANT) -> KnowledgeGraph:
    """The class-bound graph `name` (see GRAPHS) as a run of `variant` builds it (its hops:
    `kgnet.models.graph_hops`); the WordNet export is written to `workdir`."""
    if name in ("fashion_mnist", "imagenet1k"):
        card = load_card(name)
        hops = graph_hops(Config(), VARIANTS[variant])
        return build_class_graph(card.ontology, card.classes, wnids=card.wnids, hops=hops)
    if name == "wordnet":
        from kgnet.kg.build import load_knowledge_graph
        from kgnet.kg.class_mapping import bind_classes
        from kgnet.kg.wordnet import export_ontology

        nt = workdir / "wordnet-nouns.nt"
        if not nt.is_file():
            export_ontology(all_nouns=True, out=nt)
        card = load_card("imagenet1k")
        return bind_classes(load_knowledge_graph(nt), card.classes, wnids=card.wnids, source=str(nt))
    raise ValueError(f"unknown graph {name!r}; choose from {sorted(GRAPHS)}")


def build_models(in_chans: int, size: int, graph: KnowledgeGraph, config: Config | None = None,
                 backbone: str | None = None, variant: str = VARIANT) -> dict[str, KgnetModel]:
    """The baseline and the knowledge-injected model (`variant`; key "kgnet") for the classes of `graph`."""
    if config is None:
        config = Config()
        if backbone is not None:
            config.model.backbone = backbone
    return {
        "baseline": create_model(config, graph, variant="baseline", in_chans=in_chans, image_size=size),
        "kgnet": create_model(config, graph, variant=variant, in_chans=in_chans, image_size=size),
    }


def optimizer_for(model: KgnetModel, device: torch.device = torch.device("cpu")) -> torch.optim.Optimizer:
    """The trainer's optimiser (`kgnet.engine.trainer.make_optimizer`: fused AdamW) with the default settings."""
    return make_optimizer(model, Config().train, device)


def losses(model: KgnetModel, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The loss of a step after any alignment epochs: cross-entropy, with the head's own terms (the
    prototype head's alignment) as the trainer adds them (`Head.loss`)."""
    out = model(images)
    seen = torch.ones(model.num_classes, dtype=torch.bool, device=labels.device)
    return model.head.loss(out, F.cross_entropy(out.logits, labels), labels, seen=seen,
                           epoch=model.head.align_epochs)[0]


def knowledge_nodes(model: KgnetModel) -> int:
    """The ontology nodes the model reads: those its graph encoder embeds, or its concept head's concepts."""
    return len(model.graph_encoder.node_labels) if hasattr(model.graph_encoder, "node_labels") \
        else len(model.head.matrix.names)


def train_step(model: KgnetModel, optimizer: torch.optim.Optimizer, images: torch.Tensor,
               labels: torch.Tensor) -> None:
    """One stage-2 step: forward, the losses, backward, AdamW step."""
    loss = losses(model, images, labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def step_syncs(model: KgnetModel, optimizer: torch.optim.Optimizer, images: torch.Tensor,
               labels: torch.Tensor) -> dict:
    """Host syncs of one training step: the model's part (forward, losses, backward) and AdamW's."""
    with HostSyncCounter() as model_part:
        loss = losses(model, images, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
    with HostSyncCounter() as optimizer_part:
        optimizer.step()
    return {"forward_loss_backward": model_part.count, "optimizer_step": optimizer_part.count,
            "sites": dict(model_part.sites + optimizer_part.sites),
            "host_side_by_design": dict(model_part.host_side + optimizer_part.host_side)}


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


def summarise(times: dict[str, list[float]], base: str = "baseline", other: str = "kgnet") -> dict[str, float]:
    b, k = times[base], times[other]
    return {
        f"{base}_median_s": statistics.median(b),
        f"{other}_median_s": statistics.median(k),
        "ratio": statistics.median(x / y for x, y in zip(k, b)),
        "ratio_of_medians": statistics.median(k) / statistics.median(b),
    }


def measure_input(in_chans: int, size: int, rounds: int, backbone: str | None = None, batch: int = BATCH,
                  device: str = "cpu", graph: KnowledgeGraph | None = None, graph_file: Path | None = None,
                  memory: bool = True, variant: str = VARIANT, config: Config | None = None) -> dict:
    """Training step, inference, host syncs and peak memory of `variant` vs its baseline for one
    input shape (`config`: the settings both are built from; None = the defaults)."""
    torch.manual_seed(0)
    dev = torch.device(device)
    models = {name: m.to(dev) for name, m in build_models(in_chans, size, graph, config=config, backbone=backbone,
                                                          variant=variant).items()}
    images = torch.randn(batch, in_chans, size, size, device=dev)
    labels = torch.randint(0, len(graph.class_names), (batch,), device=dev)
    optimizers = {name: optimizer_for(m, dev) for name, m in models.items()}
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    for model in models.values():
        model.train()
    train = interleaved(
        {name: (lambda n=name: train_step(models[n], optimizers[n], images, labels)) for name in models}, rounds,
        sync=sync)
    syncs = {name: step_syncs(models[name], optimizers[name], images, labels) for name in models}

    def infer(model: KgnetModel) -> None:
        with torch.inference_mode():
            model(images)

    for model in models.values():
        model.eval()
    inference = interleaved({name: (lambda n=name: infer(models[n])) for name in models}, 4 * rounds, sync=sync)
    with torch.inference_mode():
        out = models["kgnet"](images[:2])
    result = {
        "tokens": list(out.token_grid),
        "graph_nodes": knowledge_nodes(models["kgnet"]),
        "attention_tokens": int(out.attention.shape[-1]) if out.attention is not None else 0,
        "design": type(models["kgnet"].head).__name__,
        "params": {name: m.param_counts() for name, m in models.items()},
        "train_step": summarise(train),
        "inference": summarise(inference),
        "host_syncs": syncs,
    }
    if memory:
        if dev.type == "cuda":
            result["peak_memory_mb"] = {name: cuda_peak_memory(models[name], optimizers[name], images, labels)
                                        for name in models}
        else:
            result["peak_memory_mb"] = {name: peak_memory(name, in_chans, size, graph_file, backbone, batch, variant)
                                        for name in models}
        result["peak_memory_method"] = MEMORY_METHOD["cuda" if dev.type == "cuda" else "cpu"]
    return result


MEMORY_METHOD = {
    "cpu": "peak RSS (Linux VmHWM) of a fresh process over 3 training steps, reset after the imports",
    "cuda": "torch.cuda.max_memory_allocated over 3 training steps, reset before them",
}


def peak_memory(model: str, in_chans: int, size: int, graph_file: Path, backbone: str | None = None,
                batch: int = BATCH, variant: str = VARIANT) -> dict:
    """Peak RSS of `model` ("baseline" or "kgnet", the latter `variant`) training for a few steps in a fresh process (CPU)."""
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_PHASE, model, str(in_chans), str(size), str(REPO),
         backbone or Config().model.backbone, str(batch), str(torch.get_num_threads()), str(graph_file), variant],
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


def graph_size(graph: KnowledgeGraph) -> dict:
    return {"nodes": graph.num_nodes, "edges": graph.num_edges, "relations": graph.num_relations,
            "classes": len(graph.class_names)}


def machine(device: str = "cpu") -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "load_average_before": os.getloadavg(),
            "device": device}
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def met(graph: str, inputs: dict) -> bool | None:
    target = TARGETS.get(graph)
    if target is None:
        return None
    return all(r["train_step"]["ratio"] <= target["train_step_ratio"]
               and r["inference"]["ratio"] <= target["inference_ratio"] for r in inputs.values())


def measure(backbone: str | None = None, inputs: dict[str, tuple[int, int]] | None = None, rounds: int = 15,
            batch: int = BATCH, device: str = "cpu", stems: bool = False, graphs: tuple[str, ...] = (DEFAULT_GRAPH,),
            layers: bool = False, trainer_syncs: bool = False, gpu: bool = False, memory: bool = True,
            variant: str = VARIANT) -> dict:
    """The whole measurement as one JSON-ready dict (what the CLI writes).

    `inputs` of the Fashion-MNIST graph go to `result["inputs"]` (what the quick suite's cost
    cell and the report read); every other graph's to `result["graphs"][name]["inputs"]`.
    """
    inputs = INPUTS if inputs is None else inputs
    backbone = backbone or Config().model.backbone
    results: dict = {
        "machine": machine(device),
        "setup": {"backbone": backbone, "batch": batch, "rounds": rounds, "device": device, "variant": variant,
                  "config": f"defaults (small_input, output_stride {SMALL_INPUT_OUTPUT_STRIDE}), variant {variant}",
                  "default_graph": GRAPHS[DEFAULT_GRAPH]},
        "targets": TARGETS,
    }
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for name in graphs:
            graph = knowledge_graph(name, workdir, variant)
            graph_file = workdir / f"{name}.pt"
            graph.save(graph_file)
            graph_rounds = rounds if name != "wordnet" else max(3, rounds // 5)
            measured = {}
            for label, (c, s) in inputs.items():
                measured[label] = r = measure_input(c, s, graph_rounds, backbone, batch, device, graph, graph_file,
                                                    memory, variant)
                print(f"{name}, {label}: train step x{r['train_step']['ratio']:.3f}, inference "
                      f"x{r['inference']['ratio']:.3f}", file=sys.stderr, flush=True)
            entry = {"description": GRAPHS[name], "graph": graph_size(graph), "rounds": graph_rounds,
                     "inputs": measured, "met": met(name, measured)}
            if name == DEFAULT_GRAPH:
                results["inputs"], results["graph"] = measured, entry["graph"]
            else:
                results.setdefault("graphs", {})[name] = entry
            if layers:
                results.setdefault("layers", {})[name] = measure_layers(graph, rounds=graph_rounds)
    if trainer_syncs:
        results["trainer_host_syncs"] = measure_trainer_syncs(backbone, variant)
    if stems:
        results["stems"] = measure_stems(rounds)
    if gpu:
        results["gpu"] = measure_gpu(rounds, variant=variant) if torch.cuda.is_available() else "no GPU"
    results["machine"]["load_average_after"] = os.getloadavg()
    verdicts = [met(DEFAULT_GRAPH, results["inputs"])] if "inputs" in results else []
    verdicts += [g["met"] for g in results.get("graphs", {}).values()]
    results["met"] = all(v for v in verdicts if v is not None)
    return results


def measure_layers(graph: KnowledgeGraph, rounds: int = 15, dim: int = 256, bases: int = 8) -> dict:
    """One R-GCN layer, forward + backward: kgnet's `RelationalConv` against PyG's `RGCNConv`."""
    from kgnet.models.relational_conv import RelationalConv, RelationalGraph

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        from torch_geometric.nn import RGCNConv

    relations, bases = graph.num_relations, min(bases, graph.num_relations)
    torch.manual_seed(0)
    reference = RGCNConv(dim, dim, relations, num_bases=bases)
    ours = RelationalConv(dim, dim, relations, num_bases=bases)
    ours.load_state_dict(reference.state_dict())
    compiled = RelationalGraph(graph.edge_index, graph.edge_type, num_nodes=graph.num_nodes, num_relations=relations)
    x = torch.randn(graph.num_nodes, dim, requires_grad=True)
    calls = {"RGCNConv": lambda: reference(x, graph.edge_index, graph.edge_type), "RelationalConv": lambda: ours(x, compiled)}
    difference = (calls["RGCNConv"]() - calls["RelationalConv"]()).abs().max().item()
    times = interleaved({name: (lambda c=call: c().square().mean().backward()) for name, call in calls.items()},
                        rounds, warmup=1)
    summary = summarise(times, "RGCNConv", "RelationalConv")
    return {"nodes": graph.num_nodes, "edges": graph.num_edges, "relations": relations,
            "pairs": compiled.num_pairs, "width": dim, "max_abs_difference": difference,
            "RGCNConv_median_s": summary["RGCNConv_median_s"],
            "RelationalConv_median_s": summary["RelationalConv_median_s"],
            "time_ratio": summary["ratio"]}


#: Images per class of the two trainer runs whose difference gives the per-step syncs: 2 and 52
#: steps, so the long run crosses two of the trainer's reads of its totals (every `POSTFIX_EVERY`
#: = 20 steps), which show as 2/50 = 0.04 per step.
RUNS = (2, 42)


def measure_trainer_syncs(backbone: str, variant: str = VARIANT) -> dict:
    """Host syncs per step of `kgnet.engine.trainer.train_variant`, with the lines that make them.

    Two runs on Fashion-MNIST that differ only in their number of training steps; everything
    done once per epoch (validation, checkpoint, logging) cancels out in the difference.
    """
    from kgnet.data.builder import build_datasets
    from kgnet.engine.distributed import DistributedContext
    from kgnet.engine.trainer import train_variant
    config = Config()
    config.model.backbone = backbone
    config.data.val_fraction = 0.01
    config.train.batch_size = 16
    config.train.epochs = 2
    config.train.min_steps = 0  # the two runs must differ in their number of steps
    variants = {"baseline": "baseline", "kgnet": variant}
    context = DistributedContext()
    graph = knowledge_graph(DEFAULT_GRAPH, Path("."), variant)
    counts: dict[str, dict[int, HostSyncCounter]] = {"baseline": {}, "kgnet": {}}
    steps = {}
    with tempfile.TemporaryDirectory() as tmp:
        for per_class in RUNS:
            config.data.samples_per_class = per_class
            bundle = build_datasets(config.data, seed=config.seed, augment=False)
            steps[per_class] = config.train.epochs * (len(bundle.train) // 16)
            for model_name, name in variants.items():
                model = create_model(config, graph, variant=name, in_chans=bundle.in_chans,
                                     image_size=bundle.image_size)
                folder = Path(tmp) / f"{model_name}-{per_class}"
                folder.mkdir()
                with HostSyncCounter() as syncs, open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
                    train_variant(model_name, config, model, bundle, folder, context)
                counts[model_name][per_class] = syncs
    short, long = RUNS
    extra_steps = steps[long] - steps[short]
    result = {"method": f"difference of two train_variant runs ({short} and {long} images per class, batch 16, "
                        f"2 epochs, variant {variant}): {extra_steps} extra steps"}
    for model_name, by_run in counts.items():
        sites = by_run[long].sites.copy()
        sites.subtract(by_run[short].sites)
        result[model_name] = {"per_step": (by_run[long].count - by_run[short].count) / extra_steps,
                           "sites_per_step": {site: n / extra_steps for site, n in sorted(sites.items()) if n}}
    return result


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


#: GPU cases: (label, channels, size, batch, small_input).
GPU_CASES = (("32x32 rgb, batch 256", 3, 32, 256, True), ("224x224 rgb, batch 128", 3, 224, 128, False))


def measure_gpu(rounds: int, device: str = "cuda", cases=GPU_CASES, variant: str = VARIANT) -> dict:
    """ResNet-18 `variant` vs baseline images per second on a GPU, fp32 / bf16 autocast, eager / compiled."""
    dev = torch.device(device)
    graph = knowledge_graph(DEFAULT_GRAPH, Path("."), variant)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu"
    results: dict = {"gpu": name, "backbone": "resnet18", "cases": {}}
    for label, chans, size, batch, small in cases:
        config = Config()
        config.model.backbone, config.model.small_input = "resnet18", small
        images = torch.randn(batch, chans, size, size, device=dev)
        labels = torch.randint(0, len(graph.class_names), (batch,), device=dev)
        for amp in (False, True):
            for compiled in (False, True):
                models = {n: m.to(dev).train() for n, m in build_models(chans, size, graph, config, variant=variant).items()}
                optimizers = {n: optimizer_for(m, dev) for n, m in models.items()}
                forward = {n: torch.compile(m) if compiled else m for n, m in models.items()}

                def step(name: str) -> None:
                    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
                        loss = losses(forward[name], images, labels)
                    optimizers[name].zero_grad(set_to_none=True)
                    loss.backward()
                    optimizers[name].step()

                times = interleaved({n: (lambda n=n: step(n)) for n in models}, rounds, warmup=3, sync=sync)
                summary = summarise(times)
                results["cases"][f"{label}, {'bf16' if amp else 'fp32'}, {'compiled' if compiled else 'eager'}"] = {
                    "baseline_images_per_s": batch / summary["baseline_median_s"],
                    "kgnet_images_per_s": batch / summary["kgnet_median_s"],
                    "images_per_s_ratio": 1 / summary["ratio"],
                    **summary,
                }
                del models, optimizers, forward
                torch.cuda.empty_cache()
    return results


def print_inputs(title: str, inputs: dict) -> None:
    print(title)
    print(f"  {'input':<12} {'tokens':>6} {'train s base/kgnet':>19} {'ratio':>6} {'infer s base/kgnet':>19} "
          f"{'ratio':>6} {'peak MB base/kgnet':>23} {'syncs/step':>10}")
    for label, r in inputs.items():
        t, i, m, s = r["train_step"], r["inference"], r.get("peak_memory_mb"), r["host_syncs"]["kgnet"]
        memory = f"{peak_mb(m['baseline']):>11.0f}/{peak_mb(m['kgnet']):<11.0f}" if m else f"{'-':>23}"
        print(f"  {label:<12} {'x'.join(map(str, r['tokens'])):>6} "
              f"{t['baseline_median_s']:>9.3f}/{t['kgnet_median_s']:<9.3f} {t['ratio']:>6.3f} "
              f"{i['baseline_median_s']:>9.4f}/{i['kgnet_median_s']:<9.4f} {i['ratio']:>6.3f} "
              f"{memory} {s['forward_loss_backward']:>10}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15,
                        help="timed training rounds per model (inference: 4x as many)")
    parser.add_argument("--graphs", nargs="+", default=list(GRAPHS), choices=list(GRAPHS),
                        help="knowledge graphs measured (default: all three)")
    parser.add_argument("--inputs", nargs="+", default=list(INPUTS), choices=list(INPUTS), metavar="INPUT",
                        help=f"input shapes measured (default: all of {', '.join(map(repr, INPUTS))}); a graph's "
                             "verdict covers the shapes measured")
    parser.add_argument("--no-layers", action="store_true", help="skip timing one R-GCN layer (ours vs PyG's)")
    parser.add_argument("--stems", action="store_true", help="also time resnet18's small-input options")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    parser.add_argument("--backbone", default=None, help="timm model measured (default: the config's, resnet10t)")
    parser.add_argument("--variant", default=VARIANT,
                        choices=["kgnet", "kgnet-composed", "kgnet-inductive", "kgnet-prototype"],
                        help="knowledge-injected variant measured against the baseline (default: kgnet, the concept "
                             "head; kgnet-prototype: R-GCN + infusion + prototype head)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2, as on the project's machines)")
    parser.add_argument("--out", default=None,
                        help="default: benchmarks/results/model_cost.json (another variant: model_cost_<name>.json, "
                             "e.g. model_cost_prototype.json)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = args.out or REPO / "benchmarks/results" / ("model_cost.json" if args.variant == VARIANT
                                                      else f"model_cost_{args.variant.removeprefix('kgnet-')}.json")
    inputs = {label: INPUTS[label] for label in args.inputs}
    results = measure(args.backbone, inputs, args.rounds, BATCH, args.device, args.stems, tuple(args.graphs),
                      layers=not args.no_layers, trainer_syncs=True, gpu=True, memory=not args.no_memory,
                      variant=args.variant)

    if "inputs" in results:
        print_inputs(f"{DEFAULT_GRAPH}: {results['graph']['nodes']} nodes", results["inputs"])
    for name, entry in results.get("graphs", {}).items():
        print_inputs(f"{name}: {entry['graph']['nodes']} nodes", entry["inputs"])
    for name, layer in results.get("layers", {}).items():
        print(f"R-GCN layer, {name}: RGCNConv {layer['RGCNConv_median_s'] * 1000:.1f} ms, RelationalConv "
              f"{layer['RelationalConv_median_s'] * 1000:.1f} ms (x{layer['time_ratio']:.2f}), "
              f"max |difference| {layer['max_abs_difference']:.1e}")
    trainer = results["trainer_host_syncs"]
    print(f"host syncs per training step of the trainer: baseline {trainer['baseline']['per_step']:.2f}, "
          f"kgnet {trainer['kgnet']['per_step']:.2f} (the trainer reads its totals every 20 steps)")
    gpu = results["gpu"]
    if isinstance(gpu, str):
        print(f"GPU section: {gpu}")
    else:
        for case, r in gpu["cases"].items():
            print(f"GPU {case}: baseline {r['baseline_images_per_s']:.0f} img/s, kgnet {r['kgnet_images_per_s']:.0f} "
                  f"img/s (x{r['images_per_s_ratio']:.2f})")
    print(f"targets {json.dumps({k: v for k, v in TARGETS.items() if v})}: {'met' if results['met'] else 'MISSED'}")
    for label, stems in results.get("stems", {}).items():
        for name, s in stems.items():
            print(f"stem {label:<12} {name:<28} grid {s['grid']} {s['train_step_median_s']:.3f} s "
                  f"({s['vs_imagenet_stem']:.2f}x)")
    write_text_atomic(out, json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
