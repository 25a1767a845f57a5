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
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from kgnet.config import Config
from kgnet.data.builder import DataBundle
from kgnet.engine.checkpoint import load_training_state, save_training_state
from kgnet.engine.distributed import DistributedContext, all_reduce_sum
from kgnet.engine.losses import training_loss
from kgnet.engine.scoring import predict
from kgnet.errors import KgnetError
from kgnet.metrics.classification import topk_accuracy
from kgnet.progress import progress

log = logging.getLogger(__name__)

LOG_FIELDS = ["epoch", "stage", "train_loss", "train_ce", "train_align", "train_top1", "val_top1", "lr", "seconds"]
#: Training steps between two updates of the progress display's loss and accuracy (each reads
#: the device's running sums once).
POSTFIX_EVERY = 20


class TrainingDiverged(KgnetError):
    """The loss stopped being a finite number."""


@dataclass
class VariantResult:
    """What training one variant contributes to metrics.json and the comparison table."""

    name: str
    model: nn.Module
    history: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0
    train_images: int = 0

    def training_numbers(self) -> dict[str, Any]:
        """The cost of training, as metrics.json reports it."""
        return {"train_seconds": self.train_seconds,
                "train_images_per_second": self.train_images / self.train_seconds if self.train_seconds else 0.0,
                "epochs": len(self.history)}


class EpochTotals:
    """One epoch's sums (loss, cross-entropy, alignment, correct, images) on the process's device.

    They stay on the device through the epoch and are read once at its end, after one
    all-reduce over the processes (which nccl can only do on the GPU).
    """

    def __init__(self, device: torch.device) -> None:
        self.sums = torch.zeros(5, dtype=torch.float64, device=device)

    def add(self, loss: torch.Tensor, ce: torch.Tensor, align: torch.Tensor, logits: torch.Tensor,
            targets: torch.Tensor) -> None:
        batch = targets.new_tensor(targets.numel(), dtype=torch.float64)
        correct = (logits.argmax(dim=1) == targets).sum().to(torch.float64)
        parts = torch.stack([loss.detach(), ce.detach(), align.detach()]).to(torch.float64) * batch
        self.sums += torch.cat([parts, correct[None], batch[None]])

    def running(self) -> dict[str, str]:
        """Mean loss and accuracy so far on this process (for the progress display)."""
        loss, _, _, correct, images = self.sums.tolist()
        return {"loss": f"{loss / max(images, 1):.3f}", "acc": f"{correct / max(images, 1):.3f}"}

    def reduce(self, context: DistributedContext) -> dict[str, float]:
        """The epoch's means over every process's images."""
        loss, ce, align, correct, images = all_reduce_sum(self.sums, context).tolist()
        return {"train_loss": loss / images, "train_ce": ce / images, "train_align": align / images,
                "train_top1": correct / images, "images": images}


def epoch_seed(seed: int, rank: int, epoch: int) -> int:
    return (seed * 1_000_003 + rank * 10_007 + epoch) % (2**31)


def epoch_order(length: int, rank_batch: int, *, seed: int, context: DistributedContext) -> list[int]:
    """This process's images of one epoch, in order: its slice of every global batch.

    A seeded permutation (the same on every process) is cut into global batches of
    `rank_batch * world_size` images, and process r takes the r-th slice of each, so one
    process and N processes take their optimiser steps on the same images. The last partial
    global batch is dropped, unless the split holds less than one, which is then shared.
    """
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(length, generator=generator).tolist()
    world, rank = context.world_size, context.rank
    global_batch = rank_batch * world
    if length < global_batch:
        return order[length * rank // world:length * (rank + 1) // world]
    steps = length // global_batch
    return [i for step in range(steps)
            for i in order[step * global_batch + rank * rank_batch:step * global_batch + (rank + 1) * rank_batch]]


def train_variant(
    name: str,
    config: Config,
    model: nn.Module,
    bundle: DataBundle,
    folder: Path,
    context: DistributedContext,
    *,
    knowledge: bool,
    show_progress: bool = True,
) -> VariantResult:
    """Train `model` for the configured epochs, checkpointing `folder/last.pt` after each.

    Picks up from `folder/last.pt` when it exists (a killed run being resumed). After each
    epoch the validation split is scored (each process its share).

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
    # and the same images as one process would (`epoch_order`).
    rank_batch = max(1, train_cfg.batch_size // context.world_size)
    steps_per_epoch = max(1, len(bundle.train) // (rank_batch * context.world_size))
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
    # The baseline uses every parameter in every step (the backbone's own pooling and head norm
    # included); a knowledge variant does not (stage 1 trains no classifier; a prototype weight
    # of 0 or 1 leaves one head out), so DDP must look for unused parameters there.
    ddp = (DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None,
                                   find_unused_parameters=knowledge)
           if context.enabled else model)
    seen = torch.zeros(bundle.num_classes, dtype=torch.bool, device=device)
    seen[bundle.seen_classes] = True
    step = start_epoch * steps_per_epoch

    for epoch in range(start_epoch, total_epochs):
        stage = 1 if epoch < align_epochs else 2
        torch.manual_seed(epoch_seed(config.seed, context.rank, epoch))
        bundle.set_epoch(epoch)
        order = epoch_order(len(bundle.train), rank_batch, seed=epoch_seed(config.seed, 0, epoch), context=context)
        loader = DataLoader(bundle.train, batch_size=rank_batch, sampler=order, num_workers=config.data.num_workers)
        ddp.train()
        totals = EpochTotals(device)
        started = time.perf_counter()
        bar = progress(loader, desc=f"{name} epoch {epoch + 1}/{total_epochs} (stage {stage})", unit="batch",
                       enabled=show_progress and context.is_primary)
        for images, targets in bar:
            images, targets = images.to(device, non_blocking=True), targets.to(device, non_blocking=True)
            out = ddp(images)
            loss, ce, align, logits = training_loss(
                out.logits, out.embedding, out.class_embeddings if knowledge else None, targets, seen=seen,
                stage=stage, temperature=train_cfg.temperature, align_weight=train_cfg.align_weight)
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
            totals.add(loss, ce, align, logits, targets)
            if step % POSTFIX_EVERY == 0:
                bar.set_postfix(**totals.running())
        seconds = time.perf_counter() - started
        means = totals.reduce(context)
        val = predict(ddp, bundle.val, device=device, context=context, embeddings=False)
        row = {
            "epoch": epoch + 1, "stage": stage,
            **{k: means[k] for k in ("train_loss", "train_ce", "train_align", "train_top1")},
            "val_top1": topk_accuracy(val.logits, val.labels, 1), "lr": scheduler.get_last_lr()[0],
            "seconds": seconds,
        }
        result.history.append(row)
        result.train_seconds += seconds
        result.train_images += int(means["images"])
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


def read_history(path: Path) -> list[dict[str, Any]]:
    """The rows of a `log.csv` written by `train_variant` (empty when there is none)."""
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]
