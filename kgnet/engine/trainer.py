"""Training one variant: two stages, per-epoch checkpoints, resumable, data-parallel.

Stage 1 (`train.align_epochs`, knowledge variants only) pulls each image embedding towards its
class node's embedding (InfoNCE over classes). Stage 2 (`train.epochs`) trains with
cross-entropy plus `train.align_weight` times the alignment term. The baseline spends the same
total number of epochs on cross-entropy, so every variant sees the same images as often.

Randomness is re-seeded from (seed, rank, epoch) at the start of every epoch, which is what
makes a resumed run finish with the same numbers as one that was never interrupted.
"""

from __future__ import annotations

import csv
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from kgnet.config import Config
from kgnet.data.builder import DataBundle
from kgnet.engine.checkpoint import load_training_state, save_training_state
from kgnet.engine.distributed import DistributedContext, all_reduce_sum
from kgnet.engine.losses import class_alignment_loss
from kgnet.errors import KgnetError
from kgnet.metrics.classification import (generalized_zero_shot, per_class_accuracy, restricted_top1,
                                          topk_accuracy)
from kgnet.metrics.hierarchy import hierarchy_metrics

log = logging.getLogger(__name__)

LOG_FIELDS = ["epoch", "stage", "train_loss", "train_ce", "train_align", "train_top1", "val_top1", "lr", "seconds"]


class TrainingDiverged(KgnetError):
    """The loss stopped being a finite number."""


@dataclass
class VariantResult:
    """What one trained variant contributes to metrics.json and the comparison table."""

    name: str
    model: nn.Module
    history: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0
    train_images: int = 0


def epoch_seed(seed: int, rank: int, epoch: int) -> int:
    return (seed * 1_000_003 + rank * 10_007 + epoch) % (2**31)


def _loader(dataset, batch_size: int, *, shuffle_seed: int | None, context: DistributedContext,
            num_workers: int) -> DataLoader:
    """Batches of `dataset`; with a seed, a fresh permutation split across the processes."""
    if shuffle_seed is None:
        order = list(range(len(dataset)))
    else:
        generator = torch.Generator().manual_seed(shuffle_seed)
        order = torch.randperm(len(dataset), generator=generator).tolist()
        # Same permutation on every rank (seeded without the rank), each takes its share.
        per_rank = len(order) // context.world_size
        order = order[context.rank * per_rank:(context.rank + 1) * per_rank] if context.enabled else order
    return DataLoader(dataset, batch_size=batch_size, sampler=order, num_workers=num_workers,
                      drop_last=shuffle_seed is not None and len(order) > batch_size)


def _seen_mask(bundle: DataBundle, device: torch.device) -> torch.Tensor:
    mask = torch.zeros(bundle.num_classes, dtype=torch.bool, device=device)
    mask[bundle.seen_classes] = True
    return mask


@torch.no_grad()
def predict_logits(model: nn.Module, dataset, *, batch_size: int, device: torch.device,
                   desc: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels for every image of `dataset` (eval mode, one process)."""
    logits, _, labels = predict_outputs(model, dataset, batch_size=batch_size, device=device, desc=desc,
                                        embeddings=False)
    return logits, labels


@torch.no_grad()
def predict_outputs(model: nn.Module, dataset, *, batch_size: int, device: torch.device,
                    desc: str | None = None, embeddings: bool = True
                    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Logits, image embeddings z (`KgnetOutput.embedding`; None unless asked) and labels.

    One pass gives both, so the evaluation's hidden-layer analysis costs no second inference.
    """
    module = model.module if isinstance(model, DistributedDataParallel) else model
    module.eval()
    logits, vectors, labels = [], [], []
    loader = DataLoader(dataset, batch_size=batch_size)
    for images, targets in tqdm(loader, desc=desc, leave=False, disable=desc is None):
        out = module(images.to(device))
        logits.append(out.logits.float().cpu())
        if embeddings:
            vectors.append(out.embedding.float().cpu())
        labels.append(targets)
    return torch.cat(logits), torch.cat(vectors) if embeddings else None, torch.cat(labels)


def train_variant(
    name: str,
    config: Config,
    model: nn.Module,
    bundle: DataBundle,
    folder: Path,
    context: DistributedContext,
    *,
    knowledge: bool,
) -> VariantResult:
    """Train `model` for the configured epochs, checkpointing `folder/last.pt` after each.

    Picks up from `folder/last.pt` when it exists (a killed run being resumed).

    Raises:
        TrainingDiverged: the loss became NaN or infinite; the last good checkpoint is kept.
    """
    train_cfg = config.train
    device = context.device
    model.to(device)
    align_epochs = train_cfg.align_epochs if knowledge else 0
    total_epochs = train_cfg.align_epochs + train_cfg.epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
    # train.batch_size is the global batch: each of N processes takes batch_size / N images a step,
    # so one process and N processes take the same optimiser steps on the same data.
    rank_batch = max(1, train_cfg.batch_size // context.world_size)
    steps_per_epoch = max(1, len(bundle.train) // context.world_size // rank_batch)
    total_steps = max(1, total_epochs * steps_per_epoch)
    warmup = min(total_steps // 10, 500)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: (step + 1) / (warmup + 1) if step < warmup
        else 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total_steps - warmup)))),
    )
    result = VariantResult(name, model)
    start_epoch = 0
    checkpoint = folder / "last.pt"
    if checkpoint.is_file():
        state = load_training_state(checkpoint)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch = state["epoch"] + 1
        result.history = list(state["history"])
        result.train_seconds, result.train_images = state["train_seconds"], state["train_images"]
        log.info("%s: resuming after epoch %d from %s", name, start_epoch, checkpoint)
    ddp = DistributedDataParallel(model, find_unused_parameters=knowledge) if context.enabled else model
    seen = _seen_mask(bundle, device)
    step = start_epoch * steps_per_epoch

    for epoch in range(start_epoch, total_epochs):
        stage = 1 if epoch < align_epochs else 2
        torch.manual_seed(epoch_seed(config.seed, context.rank, epoch))
        bundle.set_epoch(epoch)
        loader = _loader(bundle.train, rank_batch, shuffle_seed=epoch_seed(config.seed, 0, epoch),
                         context=context, num_workers=config.data.num_workers)
        ddp.train()
        sums = torch.zeros(5, dtype=torch.float64)  # loss, ce, align, correct, count
        started = time.perf_counter()
        bar = tqdm(loader, desc=f"{name} epoch {epoch + 1}/{total_epochs} (stage {stage})", leave=False,
                   disable=not context.is_primary)
        for images, targets in bar:
            images, targets = images.to(device, non_blocking=True), targets.to(device, non_blocking=True)
            out = ddp(images)
            logits = out.logits.masked_fill(~seen, torch.finfo(out.logits.dtype).min)
            ce = F.cross_entropy(logits, targets)
            align = (class_alignment_loss(out.embedding, out.class_embeddings, targets,
                                          temperature=train_cfg.temperature, allowed_classes=seen)
                     if knowledge else ce.new_zeros(()))
            loss = align if stage == 1 else ce + train_cfg.align_weight * align
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"variant {name!r}: the loss became {loss.item()} at step {step} (epoch {epoch + 1}); "
                    f"the last good checkpoint is {checkpoint if checkpoint.exists() else 'none (first epoch)'}; "
                    f"lower train.lr (now {train_cfg.lr}) and resume with --resume"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            batch = len(targets)
            sums += torch.tensor([loss.item() * batch, ce.item() * batch, align.item() * batch,
                                  (logits.argmax(1) == targets).sum().item(), batch], dtype=torch.float64)
            bar.set_postfix(loss=f"{sums[0] / sums[4]:.3f}", acc=f"{sums[3] / sums[4]:.3f}")
        seconds = time.perf_counter() - started
        sums = all_reduce_sum(sums, context)
        val_logits, val_labels = predict_logits(ddp, bundle.val, batch_size=256, device=device)
        row = {
            "epoch": epoch + 1, "stage": stage,
            "train_loss": sums[0].item() / sums[4].item(), "train_ce": sums[1].item() / sums[4].item(),
            "train_align": sums[2].item() / sums[4].item(), "train_top1": sums[3].item() / sums[4].item(),
            "val_top1": topk_accuracy(val_logits, val_labels, 1), "lr": scheduler.get_last_lr()[0],
            "seconds": seconds,
        }
        result.history.append(row)
        result.train_seconds += seconds
        result.train_images += int(sums[4].item())
        if context.is_primary:
            log.info("%s epoch %d/%d: loss %.4f, train top-1 %.4f, val top-1 %.4f (%.0fs)", name, epoch + 1,
                     total_epochs, row["train_loss"], row["train_top1"], row["val_top1"], seconds)
            _write_log(folder / "log.csv", result.history)
            save_training_state(checkpoint, {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "epoch": epoch, "history": result.history,
                "train_seconds": result.train_seconds, "train_images": result.train_images,
            })
    return result


def _write_log(path: Path, history: list[dict[str, Any]]) -> None:
    from kgnet.atomic import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=LOG_FIELDS)
        writer.writeheader()
        writer.writerows(history)


def score_predictions(logits: torch.Tensor, labels: torch.Tensor, *, class_names: list[str],
                      seen: list[int], unseen: list[int] | None = None,
                      lca_height: torch.Tensor | None = None) -> dict[str, Any]:
    """Every accuracy-type number of one variant on one split: the single scoring function.

    Both the end of training (`evaluate_variant`) and `python -m kgnet.evaluate` call it, so a
    number means the same wherever it appears. The settings:

    - `top1`, `top5`, `ece` (15 equal-width bins) and the hierarchy metrics: images of the
      seen classes, choosing among the seen classes (the closed-set task the model trained on);
    - `per_class` and `confusion` (rows: true class, columns: predicted class, counts, in
      `class_names` order): every image, choosing among all classes, so a held-out class shows
      where its images went; the diagonal over a row's sum is that class's `per_class` entry;
    - `zero_shot_top1` (among the unseen classes) and `gzsl_*` (among all classes): only when
      the split holds images of held-out classes.
    """
    from kgnet.metrics.calibration import expected_calibration_error

    unseen = list(unseen or [])
    num_classes = len(class_names)
    labels = labels.long()
    confusion = torch.bincount(labels * num_classes + logits.argmax(dim=1), minlength=num_classes**2)
    seen_logits = logits.clone()
    if unseen:
        seen_logits[:, unseen] = float("-inf")
    on_seen = torch.isin(labels, torch.tensor(seen, dtype=torch.long))
    metrics: dict[str, Any] = {
        "top1": topk_accuracy(seen_logits[on_seen], labels[on_seen], 1),
        "top5": topk_accuracy(seen_logits[on_seen], labels[on_seen], 5),
        "per_class": per_class_accuracy(logits, labels, class_names),
        "ece": expected_calibration_error(seen_logits[on_seen].softmax(dim=1), labels[on_seen]),
        "confusion": confusion.view(num_classes, num_classes).tolist(),
    }
    if lca_height is not None:
        metrics |= hierarchy_metrics(logits, labels, lca_height, allowed=seen)
    if unseen and bool(torch.isin(labels, torch.tensor(unseen, dtype=torch.long)).any()):
        metrics["zero_shot_top1"] = restricted_top1(logits, labels, unseen)
        metrics |= generalized_zero_shot(logits, labels, seen, unseen)
    return metrics


def evaluate_variant(result: VariantResult, bundle: DataBundle, device: torch.device,
                     params: dict[str, int], lca_height: torch.Tensor | None = None) -> dict[str, Any]:
    """The test-set numbers of one trained variant for metrics.json (`score_predictions`), plus
    its training cost.

    With `lca_height` (from `kgnet.metrics.hierarchy.ClassHierarchy`), also the hierarchy-aware
    mistakes `mistake_severity`, `hdist@1`, `hdist@5` on seen-class images among seen classes.
    """
    logits, labels = predict_logits(result.model, bundle.test, batch_size=256, device=device,
                                    desc=f"{result.name} test")
    scores = score_predictions(logits, labels, class_names=bundle.class_names, seen=bundle.seen_classes,
                               unseen=bundle.unseen_classes, lca_height=lca_height)
    return {
        **{k: scores.pop(k) for k in ("top1", "top5", "per_class")},
        "train_seconds": result.train_seconds,
        "train_images_per_second": result.train_images / result.train_seconds if result.train_seconds else 0.0,
        "epochs": len(result.history),
        "params": params,
        "test_images": int(len(labels)),
        **scores,
    }
