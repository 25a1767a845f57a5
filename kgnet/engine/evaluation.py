"""The evaluation of a run: every variant scored once on a split, its figures, metrics.json.

`Analysis` draws what a split's scores show: `confusion_<variant>.png` per variant and one
`embedding_projection.png` of every variant's image embeddings (a stratified sample, t-SNE or
PCA). Training feeds it the models it holds in memory; `evaluate_run` (what
`python -m kgnet.evaluate` runs) feeds it the releases of a finished run. Both score with
`kgnet.engine.scoring.score`, so the numbers and figures are the same either way.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Sequence

import torch

from kgnet.atomic import write_text_atomic
from kgnet.checks import available_device, output_folder, readable_checkpoint, run_folder
from kgnet.config import load_config
from kgnet.data.builder import build_datasets
from kgnet.engine.distributed import resolve_device
from kgnet.engine.run_claim import claim_run_folder
from kgnet.engine.scoring import Predictions, ScoringTask, metrics_json, read_metrics, score
from kgnet.errors import KgnetError
from kgnet.figures.confusion import plot_confusion
from kgnet.figures.embedding import ProjectionPanel, plot_embedding_projection
from kgnet.metrics.embedding import project_2d, stratified_sample, superclasses
from kgnet.metrics.hierarchy import ClassHierarchy
from kgnet.release import RESTORE_RELEASE, WEIGHTS, is_release, load_release

log = logging.getLogger(__name__)

SPLITS = ("test", "val")
#: Points of each variant drawn in embedding_projection.png (a stratified sample).
PROJECTION_POINTS = 1000
PROJECTIONS = ("tsne", "pca")


class Analysis:
    """The figures of one split of a run, built one variant at a time.

    Args:
        folder: The run folder the figures go to.
        split: "test" or "val"; figures of another split than test carry its name.
        class_names: The classes, in label order.
        superclass_names: Each class's superclass name, or None.
        projection: "tsne" or "pca".
        seed: Seed of the projection's sample and of t-SNE.
    """

    def __init__(self, folder: Path, split: str, class_names: list[str], superclass_names: list[str] | None,
                 *, projection: str, seed: int) -> None:
        self.folder, self.split, self.class_names = Path(folder), split, class_names
        self.superclass_names, self.projection, self.seed = superclass_names, projection, seed
        self.suffix = "" if split == "test" else f"_{split}"
        self.panels: list = []
        self.sample = None

    def add(self, name: str, metrics: dict[str, Any], predictions: Predictions, held_out: Sequence[int]) -> None:
        """Draw `name`'s confusion matrix and keep its embedding panel for `finish`."""
        labels = predictions.labels.numpy()
        path = self.folder / f"confusion_{name}{self.suffix}.png"
        plot_confusion(metrics["confusion"], self.class_names, path,
                       title=f"{name}: confusion on the {self.split} split ({len(labels):,} images)", held_out=held_out)
        if predictions.embeddings is None:
            return
        if self.sample is None:  # the same images in every panel
            self.sample = stratified_sample(labels, PROJECTION_POINTS, seed=self.seed)
        log.info("%s: %s projection of %d embeddings", name, self.method, len(self.sample))
        coords = project_2d(predictions.embeddings.numpy()[self.sample], self.projection, seed=self.seed)
        self.panels.append(ProjectionPanel(name, coords, labels[self.sample], subtitle=_silhouette_line(metrics)))

    @property
    def method(self) -> str:
        return "t-SNE" if self.projection == "tsne" else "PCA"

    def finish(self) -> None:
        """Draw the embedding projection of every variant added."""
        if not self.panels:
            return
        path = self.folder / f"embedding_projection{self.suffix}.png"
        plot_embedding_projection(
            self.panels, self.class_names, self.superclass_names, path,
            axis_name="t-SNE" if self.projection == "tsne" else "PC",
            title=f"Image embeddings (what each head classifies from) on the {self.split} split: {self.method} of "
                  f"{len(self.sample):,} images (stratified sample)\n"
                  "colour = class, marker = superclass (the class's parent in the ontology)")


def _silhouette_line(metrics: dict[str, Any]) -> str:
    def show(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    return (f"silhouette: superclass {show(metrics.get('superclass_silhouette'))}, "
            f"class {show(metrics.get('class_silhouette'))}")


def scoring_task(class_names: list[str], seen: list[int], unseen: list[int], graph, *, seed: int,
                 silhouettes: bool, no_graph_reason: str = "no class hierarchy",
                 novel: Sequence[int] = ()) -> ScoringTask:
    """What scoring a split needs, with the class hierarchy of `graph` (None = no hierarchy)."""
    return ScoringTask(class_names=class_names, seen=seen, unseen=unseen,
                       lca_height=ClassHierarchy(graph).lca_height if graph is not None else None,
                       superclasses=superclasses(graph) if graph is not None and silhouettes else None,
                       no_superclass_reason=no_graph_reason, silhouettes=silhouettes, seed=seed,
                       novel=list(novel))


#: What to do about a damaged metrics.json before scoring writes into it.
RESTORE_METRICS = "restore it, or delete it (training's own numbers in it are then lost) and evaluate again"


def merge_metrics(folder: Path, split: str, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Merge `results` into the run's metrics.json: test numbers at the top level of each
    variant's entry (training's own numbers kept), another split's under its name. A number this
    scoring could not compute (None: e.g. a superclass silhouette without the class hierarchy)
    never replaces one an earlier scoring did compute: that one is kept, with its reason."""
    metrics_file = folder / "metrics.json"
    metrics = read_metrics(metrics_file, RESTORE_METRICS)
    for name, scores in results.items():
        entry = metrics.setdefault(name, {})
        target = entry if split == "test" else entry.setdefault(split, {})
        kept = {key for key, value in scores.items() if value is None and target.get(key) is not None}
        for key in sorted(kept):
            log.info("%s: kept %s = %s from metrics.json (this scoring could not compute it: %s)", name, key,
                     target[key], scores.get(f"{key}_reason", "no reason given"))
        target.update({k: v for k, v in scores.items() if k not in kept and k.removesuffix("_reason") not in kept})
    write_text_atomic(metrics_file, metrics_json(metrics))
    return metrics


def released_variants(folder: Path, order: Sequence[str], wanted: Sequence[str] | None) -> list[str]:
    """Trained variants (folders holding a release), in `order`, then any others by name."""
    released = {p.name for p in folder.iterdir() if is_release(p)}
    ordered = [v for v in order if v in released] + sorted(released - set(order))
    unreleased = [v for v in order if v not in released and (not wanted or v in wanted)]
    if unreleased and ordered:
        log.warning("not scored: %s (no release: training did not finish it; python -m kgnet.train --resume %s "
                    "continues it)", ", ".join(unreleased), folder)
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


def _check_inputs(folder: str | Path, split: str, variants: Sequence[str] | None, device, projection: str):
    """Everything evaluating a run reads and writes, checked before any model or data loads.

    Returns:
        The run folder, its config, and the variants to score.
    """
    if split not in SPLITS:
        raise KgnetError(f"--split {split}: choose one of {', '.join(SPLITS)}")
    if projection not in PROJECTIONS:
        raise KgnetError(f"--projection {projection}: choose tsne or pca")
    folder = output_folder(run_folder(folder), "--run", must_be_empty=False)  # metrics.json and figures go there
    read_metrics(folder / "metrics.json", RESTORE_METRICS)  # merged into at the end: a damaged one is named now
    config = load_config(folder / "config.yaml")
    names = released_variants(folder, config.variants, variants)
    if not isinstance(device, torch.device):
        available_device(device or config.train.device, "--device" if device else "the run's train.device")
    for name in names:
        readable_checkpoint(folder / name / WEIGHTS, remedy=RESTORE_RELEASE)
    return folder, config, names


def evaluate_run(folder: str | Path, split: str = "test", variants: Sequence[str] | None = None, *,
                 device=None, projection: str = "tsne", progress: bool = True) -> dict[str, dict[str, Any]]:
    """Score every released variant of a run folder on `split`, merge into metrics.json, draw the figures.

    Args:
        folder: A run folder written by `python -m kgnet.train`.
        split: "test" (numbers at the top level of metrics.json) or "val" (under metrics[variant]["val"]).
        variants: Only these variants; None = every variant folder holding a release.
        device: Torch device to predict on; None = the run's `train.device`.
        projection: "tsne" or "pca", of a stratified sample of at most `PROJECTION_POINTS` images.
        progress: Show progress displays.

    Returns:
        Variant -> the numbers computed on `split` (what was merged into metrics.json).

    Raises:
        KgnetError: Not a run folder, an unknown or untrained variant, the data is missing,
            the data no longer matches the run's classes, or a training writes into the folder.
    """
    with claim_run_folder(folder, "--run", new=False):
        return _evaluate_claimed(folder, split, variants, device=device, projection=projection, progress=progress)


def _evaluate_claimed(folder, split, variants, *, device, projection, progress) -> dict[str, dict[str, Any]]:
    """`evaluate_run` once this process holds the run folder (no training writes into it meanwhile)."""
    folder, config, names = _check_inputs(folder, split, variants, device, projection)
    if not isinstance(device, torch.device):
        device = resolve_device(device or config.train.device)
    releases = {name: load_release(folder / name, device) for name in names}
    first = next(iter(releases.values()))
    for name, release in releases.items():
        if release.preprocessing != first.preprocessing:
            raise KgnetError(f"{release.folder}: prepares images differently from {first.folder}; "
                             "the variants of one run share one preprocessing")
    data = config.data
    try:
        bundle = build_datasets(data, seed=config.seed, download=data.download, augment=False, verify=False,
                                preprocessing=first.preprocessing)
    except KgnetError as err:
        raise type(err)(f"{folder / 'config.yaml'} (the run's data section): {err}") from None
    dataset = bundle.test if split == "test" else bundle.val
    if len(dataset) == 0:
        raise KgnetError(f"--split {split}: the run has no {split} images (data.val_fraction is 0?); use --split test")
    graph = next((r.graph for r in releases.values() if r.graph is not None), None)
    task = scoring_task(bundle.class_names, first.seen_classes, first.unseen_classes, graph, seed=config.seed,
                        silhouettes=True, no_graph_reason="no class hierarchy (the run had no ontology)",
                        novel=bundle.novel_classes)
    supers = task.superclasses.names if task.superclasses is not None else None
    analysis = Analysis(folder, split, bundle.class_names, supers, projection=projection, seed=config.seed)
    results: dict[str, dict[str, Any]] = {}
    for name, release in releases.items():
        if release.class_names != bundle.class_names:
            raise KgnetError(f"{release.folder / 'model.json'}: trained on classes {release.class_names}, but the "
                             f"run's data now has {bundle.class_names}; evaluate with the data it was trained on")
        calibrated = dataclasses.replace(task, gzsl_gamma=release.gzsl_gamma)
        results[name], predictions = score(release.model, dataset, calibrated, split=split, device=device,
                                           desc=f"{name} {split}" if progress else None)
        analysis.add(name, results[name], predictions, held_out=release.unseen_classes)
    analysis.finish()
    merge_metrics(folder, split, results)
    return results
