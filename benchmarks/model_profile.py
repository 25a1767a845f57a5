"""Benchmark: where kgnet's extra cost goes, part by part, in one training step and one inference step.

`benchmarks/model_cost.py` says how much kgnet costs over its baseline; this says where. Both
models (default config, built as model_cost builds them) run a few stage-2 training steps and a
few inference steps under `torch.profiler` on the CPU. Each part of the model is a profiler
scope (forward hooks open and close a `record_function` around the backbone, the knowledge
encoder's node input and R-GCN layers, the infusion block, the MLP head and the prototype head;
the losses and the optimizer step get scopes in the step itself), and every op is charged to
its innermost scope. Backward ops are charged to the scope of the forward op that created them
(the profiler links the two by the autograd sequence number); gradient accumulation into the
parameters is its own line. What runs in `KgnetModel.forward` outside any part (indexing the
node embeddings, pooling, mixing the logits) is "glue".

Times are per step, with the profiler's own overhead (it inflates many small ops more than a
few large ones, so the breakdown is for deciding where to look, not a cost figure).

    python benchmarks/model_profile.py [--graphs fashion_mnist imagenet1k] [--inputs "28x28 gray"]
                                       [--steps 5] [--threads 1] [--out benchmarks/results/model_profile.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.autograd.profiler import record_function

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.model_cost import (  # noqa: E402
    GRAPHS, INPUTS, PROTOTYPE, build_models, knowledge_graph, machine, optimizer_for)
from kgnet.atomic import write_text_atomic  # noqa: E402
from kgnet.models import KgnetModel  # noqa: E402

#: scope label -> the submodule it wraps (attribute path from the model); absent ones are skipped.
PARTS = {
    "backbone": "backbone",
    "knowledge encoder: node input": "graph_encoder.encoder.input",
    "knowledge encoder: R-GCN layers": "graph_encoder.encoder.layers",
    "knowledge encoder: final norm": "graph_encoder.encoder.norm",
    "infusion": "infusion",
    "head": "head",
}
GLUE = "glue (KgnetModel.forward)"
GRAD_ACCUMULATION = "gradient accumulation"
UNATTRIBUTED = "other"


def scope_parts(model: KgnetModel) -> list:
    """Hook every part of `model` into a profiler scope; returns the hook handles."""
    handles = []
    for label, path in PARTS.items():
        try:
            module = model.get_submodule(path)
        except AttributeError:
            continue
        for part in module if isinstance(module, torch.nn.ModuleList) else [module]:
            handles += _scope(part, label)
    return handles


def _scope(module: torch.nn.Module, label: str) -> list:
    scopes: list = []

    def enter(module, args):
        scopes.append(record_function(label))
        scopes[-1].__enter__()

    def leave(module, args, output):
        scopes.pop().__exit__(None, None, None)

    return [module.register_forward_pre_hook(enter), module.register_forward_hook(leave)]


def train_step(model: KgnetModel, optimizer: torch.optim.Optimizer, images: torch.Tensor, labels: torch.Tensor) -> None:
    """model_cost's step after any alignment epochs, with the losses and the optimizer in their own scopes."""
    with record_function(GLUE):
        out = model(images)
    with record_function("loss: cross-entropy"):
        ce = F.cross_entropy(out.logits, labels)
    with record_function("loss: the head's terms"):
        seen = torch.ones(model.num_classes, dtype=torch.bool, device=labels.device)
        loss = model.head.loss(out, ce, labels, seen=seen, epoch=model.head.align_epochs)[0]
    with record_function("optimizer step"):
        optimizer.zero_grad(set_to_none=True)
    loss.backward()
    with record_function("optimizer step"):
        optimizer.step()


SCOPES = {*PARTS, GLUE, "loss: cross-entropy", "loss: alignment", "optimizer step"}


def breakdown(events, steps: int) -> dict[str, dict[str, float]]:
    """Milliseconds per step by scope: forward (self time of the ops inside) and backward."""
    def scope_of(event) -> str:
        parent = event
        while parent is not None:
            if parent.name in SCOPES:
                return parent.name
            parent = parent.cpu_parent
        return UNATTRIBUTED

    table: dict[str, dict[str, float]] = defaultdict(lambda: {"forward_ms": 0.0, "backward_ms": 0.0})
    scope_of_sequence: dict[int, str] = {}
    backward = []
    for event in events:
        if event.name.startswith("autograd::engine::evaluate_function: "):
            backward.append(event)
            continue
        if event.name in SCOPES:
            continue
        if _inside_backward(event):
            continue
        scope = scope_of(event)
        if event.sequence_nr >= 0:  # an op that recorded an autograd node: its backward is charged here too
            scope_of_sequence.setdefault(event.sequence_nr, scope)
        table[scope]["forward_ms"] += event.self_cpu_time_total / 1000 / steps
    for event in backward:
        node = event.name.split(": ", 1)[1]
        scope = GRAD_ACCUMULATION if node.startswith("torch::autograd::AccumulateGrad") else \
            scope_of_sequence.get(event.sequence_nr, UNATTRIBUTED)
        table[scope]["backward_ms"] += event.cpu_time_total / 1000 / steps
    return {k: {kind: round(ms, 3) for kind, ms in v.items()} for k, v in sorted(table.items())}


def _inside_backward(event) -> bool:
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith("autograd::engine::evaluate_function: "):
            return True
        parent = parent.cpu_parent
    return False


def profile(models: dict[str, KgnetModel], images: torch.Tensor, labels: torch.Tensor, steps: int) -> dict:
    """Training-step and inference breakdowns of each model."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    result = {}
    for name, model in models.items():
        handles = scope_parts(model)
        optimizer = optimizer_for(model)
        model.train()
        for _ in range(2):
            train_step(model, optimizer, images, labels)
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                train_step(model, optimizer, images, labels)
        train = breakdown(prof.events(), steps)
        model.eval()
        with torch.inference_mode():
            for _ in range(2):
                model(images)
            with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
                for _ in range(steps):
                    with record_function(GLUE):
                        model(images)
        inference = breakdown(prof.events(), steps)
        for handle in handles:
            handle.remove()
        result[name] = {
            "train_step": train, "train_step_total_ms": round(sum(sum(v.values()) for v in train.values()), 3),
            "inference": inference,
            "inference_total_ms": round(sum(v["forward_ms"] for v in inference.values()), 3),
        }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--graphs", nargs="+", default=["fashion_mnist", "imagenet1k"], choices=list(GRAPHS))
    parser.add_argument("--inputs", nargs="+", default=["28x28 gray"], choices=list(INPUTS))
    parser.add_argument("--steps", type=int, default=5, help="profiled steps (after 2 unprofiled ones)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: steadier on a busy machine)")
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/model_profile.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results: dict = {"machine": machine(), "setup": {"batch": args.batch, "steps": args.steps}, "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for graph_name in args.graphs:
            graph = knowledge_graph(graph_name, Path(tmp), PROTOTYPE)
            for label in args.inputs:
                chans, size = INPUTS[label]
                torch.manual_seed(0)
                models = build_models(chans, size, graph, variant=PROTOTYPE)
                images = torch.randn(args.batch, chans, size, size)
                labels = torch.randint(0, len(graph.class_names), (args.batch,))
                case = profile(models, images, labels, args.steps)
                results["cases"][f"{graph_name}, {label}"] = case
                print_case(f"{graph_name}, {label}", case)
    results["machine"]["load_average_after"] = os.getloadavg()
    write_text_atomic(args.out, json.dumps(results, indent=2) + "\n")
    return 0


def print_case(title: str, case: dict) -> None:
    base, kg = case["baseline"], case["kgnet"]
    print(f"\n{title}: train step {base['train_step_total_ms']:.1f} -> {kg['train_step_total_ms']:.1f} ms "
          f"(x{kg['train_step_total_ms'] / base['train_step_total_ms']:.2f}), inference "
          f"{base['inference_total_ms']:.1f} -> {kg['inference_total_ms']:.1f} ms "
          f"(x{kg['inference_total_ms'] / base['inference_total_ms']:.2f})")
    print(f"  {'part':<34} {'train fwd base/kgnet':>21} {'train bwd base/kgnet':>21} {'infer base/kgnet':>17}")
    parts = sorted(set(kg["train_step"]) | set(kg["inference"]) | set(base["train_step"]))
    zero = {"forward_ms": 0.0, "backward_ms": 0.0}
    for part in parts:
        bt, kt = base["train_step"].get(part, zero), kg["train_step"].get(part, zero)
        bi, ki = base["inference"].get(part, zero), kg["inference"].get(part, zero)
        print(f"  {part:<34} {bt['forward_ms']:>10.1f}/{kt['forward_ms']:<10.1f} "
              f"{bt['backward_ms']:>10.1f}/{kt['backward_ms']:<10.1f} {bi['forward_ms']:>8.1f}/{ki['forward_ms']:<8.1f}")


if __name__ == "__main__":
    sys.exit(main())
