"""Experiment (issue 13): does pooling the knowledge tokens into concept groups bound kgnet's cost?

With a large graph every visual token attends to every node (2,946 with the ImageNet-1k graph),
so inference grows with the graph although the node embeddings are cached. This times, in one
interleaved run (medians of per-round ratios to the baseline), the prototype design (kgnet-prototype) against
the same model whose infusion block pools the nodes into G concept groups first
(`InfusionBlock(groups=G)`, experimental, not used by `create_model`): training step and
inference, 28x28 grayscale, batch 128, resnet10t, ImageNet-1k classes on kg/imagenet1k.ttl.
Accuracy is not measured here; it needs the quick suite.

    python benchmarks/infusion_groups.py [--groups 32 128] [--rounds 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.model_cost import (  # noqa: E402
    INPUTS, PROTOTYPE, build_models, interleaved, knowledge_graph, optimizer_for, train_step)
from kgnet.models import InfusionBlock  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--graph", default="imagenet1k")
    parser.add_argument("--groups", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    chans, size = INPUTS["28x28 gray"]
    with tempfile.TemporaryDirectory() as tmp:
        graph = knowledge_graph(args.graph, Path(tmp), PROTOTYPE)
    torch.manual_seed(0)
    models = build_models(chans, size, graph, variant=PROTOTYPE)
    for groups in args.groups:
        variant = build_models(chans, size, graph, variant=PROTOTYPE)["kgnet"]
        old = variant.knowledge.infusion
        variant.knowledge.infusion = InfusionBlock(token_dim=old.norm.normalized_shape[0],
                                                   node_dim=old.key_value.in_features,
                                                   attn_dim=old.heads * old.head_dim, heads=old.heads, groups=groups)
        models[f"kgnet, {groups} groups"] = variant
    images = torch.randn(args.batch, chans, size, size)
    labels = torch.randint(0, len(graph.class_names), (args.batch,))
    optimizers = {name: optimizer_for(m) for name, m in models.items()}
    load_before = os.getloadavg()
    train = interleaved({n: (lambda n=n: train_step(models[n], optimizers[n], images, labels)) for n in models},
                        args.rounds)

    def infer(model) -> None:
        with torch.inference_mode():
            model(images)

    for model in models.values():
        model.eval()
    inference = interleaved({n: (lambda n=n: infer(models[n])) for n in models}, 4 * args.rounds)
    result = {"graph": args.graph, "nodes": graph.num_nodes, "batch": args.batch, "threads": args.threads,
              "load_average": [load_before, os.getloadavg()], "variants": {}}
    for name in models:
        result["variants"][name] = {
            kind: {"median_s": statistics.median(times[name]),
                   "ratio": statistics.median(k / b for k, b in zip(times[name], times["baseline"]))}
            for kind, times in (("train_step", train), ("inference", inference))}
        r = result["variants"][name]
        print(f"{name:<22} train {r['train_step']['median_s']:.3f} s (x{r['train_step']['ratio']:.2f})  "
              f"inference {r['inference']['median_s']:.4f} s (x{r['inference']['ratio']:.2f})")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
