"""`python -m kgnet.evaluate`: score every trained variant of a run folder and draw its figures.

For each variant folder (model.safetensors + model.json) it loads the released model, rebuilds
the run's data from its config.yaml (same seed, same split), predicts the split and merges into
the run's metrics.json: top-1, top-5, per-class accuracy, the confusion matrix, the expected
calibration error, the hierarchy-aware mistakes, zero-shot/GZSL numbers when classes were held
out, and the hidden-layer analysis (class and superclass silhouette of the image embeddings).
Figures: confusion_<variant>.png and embedding_projection.png in the run folder.
`python -m kgnet.train` runs it at the end of every run.

    python -m kgnet.evaluate --run runs/20261125-fashion_mnist
    python -m kgnet.evaluate --run runs/exp1 --split val --variants baseline kgnet
    python -m kgnet.evaluate --run runs/exp1 --projection pca --device cuda

The test split's numbers sit at the top level of each variant's entry in metrics.json;
another split's go under its name (metrics["kgnet"]["val"]) and its figures carry the
split's name (confusion_kgnet_val.png).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any, Sequence

from kgnet.cli import setup_logging, user_errors_exit_2
from kgnet.errors import KgnetError

log = logging.getLogger("kgnet.evaluate")

SPLITS = ("test", "val")
#: Points of each variant drawn in embedding_projection.png (a stratified sample).
PROJECTION_POINTS = 1000


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kgnet.evaluate", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("--run", required=True, metavar="DIR", help="run folder written by python -m kgnet.train")
    parser.add_argument("--split", choices=SPLITS, default="test", help="which split to score (default test)")
    parser.add_argument("--variants", nargs="+", metavar="NAME", help="only these variants (default: every one trained)")
    parser.add_argument("--projection", choices=("tsne", "pca"), default="tsne",
                        help=f"2-D projection of a stratified sample of {PROJECTION_POINTS} embeddings per variant "
                             "(default tsne)")
    parser.add_argument("--device", help="cpu, cuda, cuda:N (default: the run's train.device)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def metrics_json(metrics: dict[str, Any]) -> str:
    """metrics.json's text: indented, each list of numbers on one line, nan written as null.

    One line per matrix row keeps a 100-class confusion matrix at 100 lines, and null keeps
    the file strict JSON that every reader accepts.
    """
    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    def render(value: Any, indent: int) -> str:
        pad, inner = " " * indent, " " * (indent + 2)
        if isinstance(value, dict) and value:
            items = [f"{inner}{json.dumps(k)}: {render(v, indent + 2)}" for k, v in value.items()]
            return "{\n" + ",\n".join(items) + f"\n{pad}}}"
        if isinstance(value, list) and value and any(isinstance(v, (dict, list)) for v in value):
            return "[\n" + ",\n".join(f"{inner}{render(v, indent + 2)}" for v in value) + f"\n{pad}]"
        return json.dumps(value, ensure_ascii=False)

    return render(clean(metrics), 0) + "\n"


def _read_run(folder: Path):
    """The run's config, or one clear error when `folder` is not a kgnet run folder."""
    from kgnet.config import load_config

    if not folder.is_dir():
        raise KgnetError(f"--run {folder}: no such folder; give a run folder written by python -m kgnet.train")
    if not (folder / "config.yaml").is_file():
        raise KgnetError(f"--run {folder}: no config.yaml there; is it a kgnet run folder "
                         "(written by python -m kgnet.train)?")
    return load_config(folder / "config.yaml")


def _variant_folders(folder: Path, config, wanted: Sequence[str] | None) -> list[str]:
    """Trained variants (folders holding a release), in the config's order, then any others by name."""
    released = {p.name for p in folder.iterdir()
                if (p / "model.safetensors").is_file() and (p / "model.json").is_file()}
    ordered = [v for v in config.variants if v in released] + sorted(released - set(config.variants))
    if wanted:
        missing = [v for v in wanted if v not in released]
        if missing:
            found = ", ".join(ordered) or "none"
            raise KgnetError(f"--variants: {', '.join(missing)} not trained in {folder} "
                             f"(no <variant>/model.safetensors + model.json); trained: {found}")
        return [v for v in ordered if v in wanted]
    if not ordered:
        raise KgnetError(f"--run {folder}: no trained variant (no <variant>/model.safetensors + model.json); "
                         "has training finished? (python -m kgnet.train --resume continues it)")
    return ordered


def _run_graph(folder: Path, variants: Sequence[str], config, bundle):
    """The class-bound graph of the run, or (None, why not).

    The baseline's release holds no graph, so its hierarchy metrics and superclasses use the
    graph of a knowledge variant of the same run (the one the models were trained with); a
    run with no knowledge variant rebuilds it from the run's config (the data set's shipped
    ontology or knowledge.ontology; compiled graphs are cached).
    """
    from kgnet.engine.checkpoint import load_release
    from kgnet.kg.build import build_class_graph
    from kgnet.kg.graph import KnowledgeGraph

    for name in variants:
        meta = json.loads((folder / name / "model.json").read_text())
        if meta.get("graph"):
            tensors, _ = load_release(folder / name)
            graph = KnowledgeGraph.from_dict(
                {**meta["graph"], **{k.removeprefix("graph."): v for k, v in tensors.items() if k.startswith("graph.")}})
            return graph, None
    knowledge = config.knowledge
    ontology = knowledge.ontology or (bundle.card.ontology if bundle.card else None)
    if ontology is None:
        return None, "no ontology for this data set (knowledge.ontology is null and it ships none)"
    try:
        graph = build_class_graph(ontology, bundle.class_names, hops=knowledge.hops, wnids=bundle.wnids,
                                  mapping_file=knowledge.class_map, predicate=knowledge.class_predicate,
                                  fmt=knowledge.format, imports=knowledge.imports)
    except KgnetError as err:
        log.warning("no class hierarchy for the baseline: %s", err)
        return None, f"the run's ontology could not be compiled ({err})"
    return graph, None


def evaluate_run(folder: str | Path, split: str = "test", variants: Sequence[str] | None = None, *,
                 device=None, projection: str = "tsne", progress: bool = True) -> dict[str, dict[str, Any]]:
    """Score every trained variant of a run folder on `split`, merge into metrics.json, draw the figures.

    Args:
        folder: a run folder written by `python -m kgnet.train`.
        split: "test" (numbers at the top level of metrics.json) or "val" (under metrics[variant]["val"]).
        variants: only these variants; None = every variant folder holding a release.
        device: torch device to predict on; None = the run's `train.device`.
        projection: "tsne" or "pca", of a stratified sample of at most `PROJECTION_POINTS` images.
        progress: show progress bars.

    Returns:
        Variant -> the numbers computed on `split` (what was merged into metrics.json).

    Raises:
        KgnetError: not a run folder, an unknown or untrained variant, the data is missing, or
            the data no longer matches the run's classes.
    """
    import torch

    from kgnet.atomic import write_text_atomic
    from kgnet.data.builder import build_datasets
    from kgnet.engine.distributed import resolve_device
    from kgnet.engine.trainer import predict_outputs, score_predictions
    from kgnet.figures.confusion import plot_confusion
    from kgnet.figures.embedding import ProjectionPanel, plot_embedding_projection
    from kgnet.metrics.embedding import embedding_metrics, project_2d, stratified_sample, superclasses
    from kgnet.metrics.hierarchy import ClassHierarchy
    from kgnet.predict import load_released_model

    if split not in SPLITS:
        raise KgnetError(f"--split {split}: choose one of {', '.join(SPLITS)}")
    if projection not in ("tsne", "pca"):
        raise KgnetError(f"--projection {projection}: choose tsne or pca")
    folder = Path(folder)
    config = _read_run(folder)
    names = _variant_folders(folder, config, variants)
    if not isinstance(device, torch.device):
        try:
            device = resolve_device(device or config.train.device)
        except RuntimeError as err:
            raise KgnetError(f"--device {device}: not a torch device ({err}); use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise KgnetError(f"--device {device}: this machine has no usable CUDA GPU; use --device cpu")
    data = config.data
    try:
        bundle = build_datasets(data, seed=config.seed, download=data.download, augment=False, verify=False)
    except KgnetError as err:
        raise type(err)(f"{folder / 'config.yaml'} (the run's data section): {err}") from None
    dataset = bundle.test if split == "test" else bundle.val
    if len(dataset) == 0:
        raise KgnetError(f"--split {split}: the run has no {split} images (data.val_fraction is 0?); use --split test")
    graph, no_graph = _run_graph(folder, names, config, bundle)
    lca_height = ClassHierarchy(graph).lca_height if graph is not None else None
    supers = superclasses(graph) if graph is not None else None
    suffix = "" if split == "test" else f"_{split}"

    results: dict[str, dict[str, Any]] = {}
    panels, sample = [], None
    for name in names:
        model, meta = load_released_model(folder / name)
        if meta["class_names"] != bundle.class_names:
            raise KgnetError(f"{folder / name / 'model.json'}: trained on classes {meta['class_names']}, but the "
                             f"run's data now has {bundle.class_names}; evaluate with the data it was trained on")
        logits, embeddings, labels = predict_outputs(model.to(device), dataset, batch_size=256, device=device,
                                                     desc=f"{name} {split}" if progress else None)
        scores = score_predictions(logits, labels, class_names=bundle.class_names, seen=meta["seen_classes"],
                                   unseen=meta["unseen_classes"], lca_height=lca_height)
        scores[f"{split}_images"] = int(len(labels))
        scores |= embedding_metrics(embeddings, labels, supers, seed=config.seed,
                                    no_superclass_reason=no_graph or "no class hierarchy")
        results[name] = scores
        plot_confusion(scores["confusion"], bundle.class_names, folder / f"confusion_{name}{suffix}.png",
                       title=f"{name}: confusion on the {split} split ({len(labels):,} images)",
                       held_out=meta["unseen_classes"])
        if sample is None:  # the same images in every panel
            sample = stratified_sample(labels.numpy(), PROJECTION_POINTS, seed=config.seed)
        log.info("%s: %s projection of %d embeddings", name, "t-SNE" if projection == "tsne" else "PCA", len(sample))
        coords = project_2d(embeddings.numpy()[sample], projection, seed=config.seed)
        panels.append(ProjectionPanel(name, coords, labels.numpy()[sample], subtitle=_silhouette_line(scores)))

    method = "t-SNE" if projection == "tsne" else "PCA"
    plot_embedding_projection(
        panels, bundle.class_names, supers.names if supers is not None else None,
        folder / f"embedding_projection{suffix}.png", axis_name="t-SNE" if projection == "tsne" else "PC",
        title=f"Image embeddings (KgnetOutput.embedding) on the {split} split: {method} of {len(sample):,} images "
              "(stratified sample)\ncolour = class, marker = superclass (the class's parent in the ontology)")

    metrics_file = folder / "metrics.json"
    metrics: dict[str, Any] = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    for name, scores in results.items():
        entry = metrics.setdefault(name, {})
        if split == "test":
            entry.update(scores)
        else:
            entry[split] = scores
    write_text_atomic(metrics_file, metrics_json(metrics))
    return results


def _silhouette_line(scores: dict[str, Any]) -> str:
    def show(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    return f"silhouette: superclass {show(scores['superclass_silhouette'])}, class {show(scores['class_silhouette'])}"


def evaluation_table(results: dict[str, dict[str, Any]]) -> str:
    """A short table of what `evaluate_run` computed (percentages; silhouettes as they are)."""
    zero_shot = any("zero_shot_top1" in m for m in results.values())
    hierarchy = any("mistake_severity" in m for m in results.values())
    columns = [("top-1", "top1", True), ("top-5", "top5", True), ("ECE", "ece", True)]
    if hierarchy:
        columns.append(("severity", "mistake_severity", False))
    if zero_shot:
        columns += [("zero-shot", "zero_shot_top1", True), ("GZSL H", "gzsl_harmonic", True)]
    columns += [("class sil.", "class_silhouette", False), ("super sil.", "superclass_silhouette", False)]
    header = f"{'variant':<18}" + "".join(f"{title:>12}" for title, _, _ in columns)
    lines = [header, "-" * len(header)]
    for name, m in results.items():
        cells = []
        for _, key, percent in columns:
            value = m.get(key)
            if value is None or (isinstance(value, float) and not math.isfinite(value)):
                cells.append(f"{'n/a':>12}")
            else:
                cells.append(f"{100 * value:>11.2f}%" if percent else f"{value:>12.3f}")
        lines.append(f"{name:<18}" + "".join(cells))
    reasons = {m[key] for m in results.values() for key in ("superclass_silhouette_reason",) if key in m}
    lines += [f"super sil. {reason}" for reason in sorted(reasons)]
    return "\n".join(lines)


@user_errors_exit_2
def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.verbose)
    results = evaluate_run(args.run, args.split, args.variants, device=args.device, projection=args.projection)
    suffix = "" if args.split == "test" else f"_{args.split}"
    figures = [f"confusion_{name}{suffix}.png" for name in results] + [f"embedding_projection{suffix}.png"]
    print(f"\n{evaluation_table(results)}\n\nwritten to {args.run}: metrics.json, {', '.join(figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
