"""`python -m kgnet.train`: train the baseline and knowledge-injected variants and compare them.

With no arguments: Fashion-MNIST (offline, from the Debian package) with its shipped WordNet
ontology, variants `baseline` and `kgnet`, on the CPU, printing a comparison table.

Launch recipes:

    python -m kgnet.train                                    # the embedded default, CPU
    python -m kgnet.train --config my.yaml --set train.epochs=10 --out runs/exp1
    python -m kgnet.train --set data.name=cifar10 --set data.root=/data/cifar --set train.device=cuda
    python -m kgnet.train --resume runs/exp1                 # continue a killed run
    torchrun --nproc_per_node=2 -m kgnet.train --set train.device=cpu   # DDP, gloo on CPU
    torchrun --nproc_per_node=8 -m kgnet.train --set train.device=cuda  # DDP, nccl on GPUs

Every run writes a folder: config.yaml, metrics.json, comparison.txt, curves.png, and per
variant last.pt (resumable state), model.safetensors + model.json (the release) and log.csv.
At the end it runs `python -m kgnet.evaluate` on the run (confusion_<variant>.png,
embedding_projection.png, calibration and embedding numbers in metrics.json).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from kgnet.cli import setup_logging, user_errors_exit_2
from kgnet.config import add_config_arguments, config_from_args, load_config, save_config
from kgnet.errors import ConfigError

log = logging.getLogger("kgnet.train")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kgnet.train", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    add_config_arguments(parser)
    parser.add_argument("--out", metavar="DIR", help="run folder (default: <out>/<time>-<dataset>)")
    parser.add_argument("--resume", metavar="DIR", help="continue the run in DIR with its saved config")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def _run_folder(args: argparse.Namespace, config) -> tuple[Path, Any]:
    """The run folder and config: a resumed run's own, or a new (empty) folder."""
    if args.resume:
        folder = Path(args.resume)
        saved = folder / "config.yaml"
        if not saved.is_file():
            raise ConfigError(f"--resume {folder}: no config.yaml there; is it a kgnet run folder?")
        if args.config or args.overrides:
            raise ConfigError("--resume takes the run's saved config; drop --config/--set")
        return folder, load_config(saved)
    if args.out:
        folder = Path(args.out)
        if folder.exists() and any(folder.iterdir()):
            raise ConfigError(f"--out {folder}: the folder is not empty; pick a new one or --resume it")
    else:
        folder = Path(config.out) / f"{time.strftime('%Y%m%d-%H%M%S')}-{config.data.name}"
    return folder, config


def _release_meta(name: str, vcfg, bundle, graph) -> dict[str, Any]:
    from kgnet.config import config_to_dict

    graph_fields = {k: v for k, v in graph.to_dict().items() if not hasattr(v, "shape")} if graph else None
    return {
        "format": "kgnet-release-1",
        "variant": name,
        "config": config_to_dict(vcfg),
        "class_names": bundle.class_names,
        "wnids": bundle.wnids,
        "seen_classes": bundle.seen_classes,
        "unseen_classes": bundle.unseen_classes,
        "in_chans": bundle.in_chans,
        "image_size": bundle.image_size,
        "pixel_stats": {"mean": list(bundle.stats.mean), "std": list(bundle.stats.std)},
        "graph": graph_fields,
    }


def _comparison_table(metrics: dict[str, dict[str, Any]]) -> str:
    zero_shot = any("zero_shot_top1" in m for m in metrics.values())
    header = f"{'variant':<18}{'top-1':>8}{'top-5':>8}{'Δ top-1':>9}" + (f"{'zero-shot':>11}" if zero_shot else "")
    header += f"{'params':>12}{'train s':>9}{'img/s':>8}"
    lines = [header, "-" * len(header)]
    base = metrics.get("baseline", {}).get("top1")
    for name, m in metrics.items():
        delta = f"{100 * (m['top1'] - base):+.2f}" if base is not None and name != "baseline" else ""
        row = f"{name:<18}{100 * m['top1']:>7.2f}%{100 * m['top5']:>7.2f}%{delta:>9}"
        if zero_shot:
            row += f"{100 * m['zero_shot_top1']:>10.2f}%" if "zero_shot_top1" in m else f"{'':>11}"
        row += f"{m['params']['total']:>12,}{m['train_seconds']:>9.0f}{m['train_images_per_second']:>8.0f}"
        lines.append(row)
    return "\n".join(lines)


@user_errors_exit_2
def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.verbose)
    config = config_from_args(args) if not args.resume else None
    folder, config = _run_folder(args, config)

    import torch

    from kgnet.data.builder import build_datasets
    from kgnet.engine.checkpoint import save_release
    from kgnet.engine.curves import plot_curves
    from kgnet.engine.distributed import setup_distributed, teardown_distributed
    from kgnet.engine.trainer import evaluate_variant, train_variant
    from kgnet.engine.variants import check_variants, uses_knowledge, variant_config
    from kgnet.evaluate import evaluate_run, evaluation_table, metrics_json
    from kgnet.kg.build import build_class_graph
    from kgnet.kg.text_features import encode_texts
    from kgnet.metrics.hierarchy import ClassHierarchy
    from kgnet.models import create_model
    from kgnet.atomic import write_text_atomic

    check_variants(config.variants)
    context = setup_distributed(config.train.device)
    try:
        torch.manual_seed(config.seed)
        data = config.data
        bundle = build_datasets(data, seed=config.seed, download=data.download, augment=data.augment,
                                verify=data.verify)
        graph = text_features = lca_height = None
        if any(uses_knowledge(variant_config(config, v)) for v in config.variants):
            knowledge = config.knowledge
            ontology = knowledge.ontology or (bundle.card.ontology if bundle.card else None)
            if ontology is None:
                raise ConfigError("knowledge.ontology: this data set has no shipped ontology; give an RDF file "
                                  "describing its classes (or run only the baseline: --set variants=[baseline])")
            graph = build_class_graph(ontology, bundle.class_names, hops=knowledge.hops, wnids=bundle.wnids,
                                      mapping_file=knowledge.class_map, predicate=knowledge.class_predicate,
                                      fmt=knowledge.format, imports=knowledge.imports)
            text_features = encode_texts(graph.node_texts, knowledge.text_model, progress=context.is_primary)
            log.info("knowledge: %s from %s", graph, ontology)
            lca_height = ClassHierarchy(graph).lca_height

        if context.is_primary:
            folder.mkdir(parents=True, exist_ok=True)
            save_config(config, folder / "config.yaml")
            log.info("run folder: %s", folder)
        metrics_file = folder / "metrics.json"
        metrics: dict[str, Any] = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
        histories: dict[str, list[dict[str, Any]]] = {}
        for name in config.variants:
            vcfg = variant_config(config, name)
            knowledge_on = uses_knowledge(vcfg)
            vfolder = folder / name
            if name in metrics:
                log.info("%s: finished earlier, kept", name)
                histories[name] = _read_history(vfolder / "log.csv")
                continue
            if context.is_primary:
                vfolder.mkdir(parents=True, exist_ok=True)
            torch.manual_seed(config.seed)  # every variant starts from the same backbone init
            model = create_model(vcfg, graph if knowledge_on else None, text_features if knowledge_on else None,
                                 num_classes=bundle.num_classes, in_chans=bundle.in_chans,
                                 image_size=bundle.image_size)
            result = train_variant(name, vcfg, model, bundle, vfolder, context, knowledge=knowledge_on)
            histories[name] = result.history
            if context.is_primary:
                metrics[name] = evaluate_variant(result, bundle, context.device, model.param_counts(), lca_height)
                tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
                if knowledge_on:
                    tensors |= {f"graph.{k}": v for k, v in graph.to_dict().items() if hasattr(v, "shape")}
                    tensors["text_features"] = text_features
                save_release(vfolder, tensors, _release_meta(name, vcfg, bundle, graph if knowledge_on else None))
                write_text_atomic(metrics_file, metrics_json(metrics))
        if context.is_primary:
            # Confusion, calibration, embedding analysis and figures, from the released models.
            evaluation = None
            if config.train.analysis != "none":
                evaluation = evaluate_run(folder, "test", list(config.variants), device=context.device,
                                          projection=config.train.analysis)
                metrics = json.loads(metrics_file.read_text())
            table = _comparison_table(metrics)
            write_text_atomic(folder / "comparison.txt", table + "\n")
            plot_curves(histories, folder / "curves.png")
            analysis = f"{evaluation_table(evaluation)}\n\n" if evaluation else ""
            print(f"\n{bundle.summary()}\n{table}\n\n{analysis}run folder: {folder}")
    finally:
        teardown_distributed()
    return 0


def _read_history(path: Path) -> list[dict[str, Any]]:
    import csv

    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


if __name__ == "__main__":
    sys.exit(main())
