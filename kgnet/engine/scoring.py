"""Scoring a model on a split: one inference pass, then every number metrics.json holds.

`predict` runs a model over a split once (under torchrun each process its contiguous share,
gathered to every process); `score_predictions` turns the logits, embeddings and labels into
the numbers; `score` is both. Training calls it on the models it holds in memory and
`python -m kgnet.evaluate` on models loaded from their releases, so a number means the same
wherever it appears and no split is predicted twice for one report.
"""

from __future__ import annotations

import json
import math
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from kgnet.errors import KgnetError
from kgnet.engine.distributed import DistributedContext, broadcast_buffers, gather_rows, shard
from kgnet.metrics.classification import (area_under_seen_unseen_curve, generalized_few_shot,
                                          generalized_zero_shot, per_class_accuracy,
                                          restricted_top1, seen_offset, topk_accuracy)
from kgnet.metrics.calibration import expected_calibration_error
from kgnet.metrics.embedding import Superclasses, embedding_metrics
from kgnet.metrics.hierarchy import hierarchy_metrics
from kgnet.progress import progress

#: Images per inference batch (on 2 CPU cores 32 to 256 score the default model equally fast,
#: with the same logits bit for bit: measured with warm-up, in alternating order).
BATCH_SIZE = 256


@dataclass
class Predictions:
    """One pass of a model over a split (CPU tensors, in the split's order)."""

    logits: Tensor
    embeddings: Tensor | None
    labels: Tensor


@dataclass
class ScoringTask:
    """What the numbers of a split need besides the predictions.

    Attributes:
        class_names: The model's outputs, in order.
        seen: Label indices trained on.
        unseen: Label indices held out (scored zero-shot).
        lca_height: [K, K] LCA heights of the class hierarchy (`ClassHierarchy`), for the
            hierarchy-aware mistakes; None = no hierarchy.
        superclasses: Each class's parent, for the superclass silhouette; None = none.
        no_superclass_reason: Why there is no superclass silhouette when `superclasses` is None.
        silhouettes: Compute the hidden-layer analysis (class and superclass silhouette).
        seed: Seed of the silhouette's sample.
        gzsl_gamma: The calibrated-stacking constant subtracted from the seen classes' logits
            when choosing among all classes (chosen on validation, `kgnet.engine.gzsl`); None =
            no calibration (the run holds nothing out, or `train.gzsl_calibration` is none).
        novel: Seen classes trained on few images (`data.novel_classes`); the other seen
            classes are the base classes.
    """

    class_names: list[str]
    seen: list[int]
    unseen: list[int]
    lca_height: Tensor | None = None
    superclasses: Superclasses | None = None
    no_superclass_reason: str = "no class hierarchy"
    silhouettes: bool = True
    seed: int = 0
    gzsl_gamma: float | None = None
    novel: list[int] = dataclasses.field(default_factory=list)


@torch.no_grad()
def predict(model: nn.Module, dataset, *, device: torch.device, context: DistributedContext | None = None,
            embeddings: bool = True, desc: str | None = None, batch_size: int = BATCH_SIZE) -> Predictions:
    """Logits (and image embeddings z) of every image of `dataset`, in eval mode.

    Under torchrun every process predicts its contiguous share with the primary's buffers
    (`broadcast_buffers`), and the shares are gathered on the process's device, so every
    process returns the whole split, scored by the model the primary releases.

    Args:
        model: A `KgnetModel` (or its DDP wrapper).
        dataset: The split.
        device: The process's device.
        context: Where this process sits among torchrun's; None = alone.
        embeddings: Also return the image embeddings.
        desc: Progress display text; None = no display.
        batch_size: Images per forward pass.
    """
    context = context or DistributedContext(device=device)
    module = model.module if isinstance(model, DistributedDataParallel) else model
    module.eval()
    broadcast_buffers(module, context)
    mine = shard(len(dataset), context)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=list(mine))
    logits, vectors, labels = [], [], []
    for images, targets in progress(loader, desc=desc or "", unit="batch", enabled=desc is not None and context.is_primary):
        out = module(images.to(device, non_blocking=True))
        logits.append(out.logits.float())
        if embeddings:
            vectors.append(out.embedding.float())
        labels.append(targets.to(device))

    def rows(parts: list[Tensor], like: tuple[int, ...], dtype: torch.dtype) -> Tensor:
        local = torch.cat(parts) if parts else torch.zeros((0, *like), dtype=dtype, device=device)
        return gather_rows(local, context).cpu()

    num_classes = module.num_classes
    return Predictions(
        logits=rows(logits, (num_classes,), torch.float32),
        embeddings=rows(vectors, (module.embed_dim,), torch.float32) if embeddings else None,
        labels=rows(labels, (), torch.int64),
    )


def score_predictions(predictions: Predictions, task: ScoringTask) -> dict[str, Any]:
    """Every number of one variant on one split, from its predictions.

    The settings:

    - `top1`, `top5`, `ece` (15 equal-width bins) and the hierarchy metrics: images of the
      seen classes, choosing among the seen classes (the closed-set task the model trained on);
    - `per_class` and `confusion` (rows: true class, columns: predicted class, counts, in
      `class_names` order): every image, choosing among all classes, so a held-out class shows
      where its images went; the diagonal over a row's sum is that class's `per_class` entry.
      With `task.gzsl_gamma` the choice is the calibrated one (gamma subtracted from the seen
      classes' logits), as `python -m kgnet.predict` chooses;
    - `zero_shot_top1` (among the unseen classes only) and `gzsl_*` (among all classes): only
      when the split holds images of held-out classes. `gzsl_seen/_unseen/_harmonic` choose
      with the model's own scores (gamma 0), `gzsl_calibrated_*` with `gzsl_gamma` subtracted
      from the seen classes' logits (when the task has one), and `gzsl_ausuc` is the area under
      the seen-unseen accuracy curve as that constant sweeps over all values (chooses nothing);
    - `novel_top1`, `base_top1` and `gfsl_harmonic` (their harmonic mean): with novel classes
      (`task.novel`), the accuracy on the novel classes' images and on the base classes'
      images, each choosing among all classes (the generalised few-shot task);
    - with `task.silhouettes`, the class and superclass silhouettes of the image embeddings.
    """
    logits, labels = predictions.logits, predictions.labels.long()
    unseen = list(task.unseen)
    num_classes = len(task.class_names)
    calibrated = task.gzsl_gamma is not None and bool(unseen)
    chosen = seen_offset(logits, task.seen, task.gzsl_gamma) if calibrated else logits
    confusion = torch.bincount(labels * num_classes + chosen.argmax(dim=1), minlength=num_classes**2)
    seen_logits = logits.clone()
    if unseen:
        seen_logits[:, unseen] = float("-inf")
    on_seen = torch.isin(labels, torch.tensor(task.seen, dtype=torch.long))
    metrics: dict[str, Any] = {
        "top1": topk_accuracy(seen_logits[on_seen], labels[on_seen], 1),
        "top5": topk_accuracy(seen_logits[on_seen], labels[on_seen], 5),
        "per_class": per_class_accuracy(chosen, labels, task.class_names),
        "ece": expected_calibration_error(seen_logits[on_seen].softmax(dim=1), labels[on_seen]),
        "confusion": confusion.view(num_classes, num_classes).tolist(),
    }
    if task.lca_height is not None:
        metrics |= hierarchy_metrics(logits, labels, task.lca_height, allowed=task.seen)
    if unseen and bool(torch.isin(labels, torch.tensor(unseen, dtype=torch.long)).any()):
        metrics["zero_shot_top1"] = restricted_top1(logits, labels, unseen)
        metrics |= generalized_zero_shot(logits, labels, task.seen, unseen)
        if calibrated:
            metrics["gzsl_gamma"] = task.gzsl_gamma
            metrics |= {k.replace("gzsl_", "gzsl_calibrated_"): v
                        for k, v in generalized_zero_shot(chosen, labels, task.seen, unseen).items()}
        metrics["gzsl_ausuc"] = area_under_seen_unseen_curve(logits, labels, task.seen, unseen)
    if task.novel:
        metrics |= generalized_few_shot(chosen, labels, task.novel, [c for c in task.seen if c not in task.novel])
    if task.silhouettes and predictions.embeddings is not None:
        metrics |= embedding_metrics(predictions.embeddings, labels, task.superclasses, seed=task.seed,
                                     no_superclass_reason=task.no_superclass_reason)
    return metrics


def score(model: nn.Module, dataset, task: ScoringTask, *, split: str, device: torch.device,
          context: DistributedContext | None = None, desc: str | None = None
          ) -> tuple[dict[str, Any], Predictions] | None:
    """Predict `dataset` once and compute every number of `score_predictions`.

    Returns:
        The numbers (with `<split>_images`) and the predictions they came from; None on every
        process of a torchrun job but the primary (which alone writes the numbers).
    """
    context = context or DistributedContext(device=device)
    predictions = predict(model, dataset, device=device, context=context, embeddings=task.silhouettes, desc=desc)
    if not context.is_primary:
        return None
    metrics = score_predictions(predictions, task)
    metrics[f"{split}_images"] = int(len(predictions.labels))
    return metrics, predictions


def read_metrics(path: Path, remedy: str) -> dict[str, Any]:
    """A run's metrics.json as written by `metrics_json` (empty when there is none yet).

    Raises:
        KgnetError: not readable JSON, or not an object of variants' entries; `remedy` says what to do.
    """
    try:
        metrics = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        raise KgnetError(f"{path}: not readable JSON ({str(err)[:160]}); {remedy}") from None
    if not isinstance(metrics, dict) or not all(isinstance(entry, dict) for entry in metrics.values()):
        raise KgnetError(f"{path}: not a kgnet metrics file (a JSON object of variants); {remedy}")
    return metrics


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
