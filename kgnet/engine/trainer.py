"""Training one variant: per-epoch checkpoints, resumable, data-parallel.

Every variant trains `train.epochs` epochs on the same images. The step's loss is the head's
(`Head.loss`): cross-entropy for most; a head with an alignment stage (the prototype head)
trains its alignment alone in its first `align_epochs` (stage 1 in the log) and adds it to the
cross-entropy after (stage 2).

Randomness is re-seeded from (seed, rank, epoch) at the start of every epoch, which is what
makes a resumed run finish with the same numbers as one that was never interrupted.
"""

from __future__ import annotations

import csv
import functools
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

from kgnet.atomic import atomic_path
from kgnet.config import Config, TrainConfig, config_to_dict
from kgnet.data.builder import DataBundle
from kgnet.engine.checkpoint import load_training_state, save_training_state
from kgnet.engine.distributed import DistributedContext, all_reduce_sum
from kgnet.engine.losses import cross_entropy, logit_adjustment, unequal_class_counts
from kgnet.engine.scoring import predict
from kgnet.errors import ConfigError, KgnetError
from kgnet.metrics.classification import topk_accuracy
from kgnet.metrics.embedding import stratified_sample
from kgnet.progress import progress

log = logging.getLogger(__name__)

LOG_FIELDS = ["epoch", "stage", "train_loss", "train_ce", "train_align", "train_top1", "val_top1", "val_images",
              "steps", "lr", "seconds"]
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
    amp: bool = False
    compile: bool = False

    def training_numbers(self) -> dict[str, Any]:
        """The cost of training and the settings it depends on (`train.amp`, `train.compile`), as
        metrics.json reports them."""
        return {"train_seconds": self.train_seconds,
                "train_images_per_second": self.train_images / self.train_seconds if self.train_seconds else 0.0,
                "epochs": len(self.history), "amp": self.amp, "compile": self.compile}


class EpochTotals:
    """One epoch's running sums on the process's device, and the first non-finite loss.

    Slots: loss, cross-entropy and alignment (each times the batch), correct, images, steps,
    then the epoch's first step whose loss was not finite (-1: none yet) and that loss. A
    training step only adds to them on the device; `read` copies them to the host, which the
    trainer does every `POSTFIX_EVERY` steps (the progress display and the divergence check)
    and at the epoch's end, so no step waits for the device.
    """

    def __init__(self, device: torch.device) -> None:
        self.sums = torch.zeros(8, dtype=torch.float64, device=device)
        self.sums[6] = -1

    def add(self, loss: torch.Tensor, ce: torch.Tensor, align: torch.Tensor, logits: torch.Tensor,
            targets: torch.Tensor) -> None:
        loss, sums = loss.detach().to(torch.float64), self.sums
        batch = targets.new_tensor(targets.numel(), dtype=torch.float64)
        correct = (logits.argmax(dim=1) == targets).sum().to(torch.float64)
        parts = torch.stack([loss, ce.detach().to(torch.float64), align.detach().to(torch.float64)]) * batch
        first_bad = ~torch.isfinite(loss) & (sums[6] < 0)
        sums[6:] = torch.where(first_bad, torch.stack([sums[5], loss]), sums[6:])
        sums[:6] += torch.cat([parts, correct[None], batch[None], batch.new_ones(1)])

    def read(self) -> dict[str, float]:
        """The sums on the host (one device-to-host copy)."""
        loss, ce, align, correct, images, steps, bad_step, bad_loss = self.sums.tolist()
        return {"loss": loss, "ce": ce, "align": align, "correct": correct, "images": images, "steps": steps,
                "bad_step": bad_step, "bad_loss": bad_loss}

    def reduce(self, context: DistributedContext) -> dict[str, float]:
        """The epoch's means over every process's images."""
        loss, ce, align, correct, images = all_reduce_sum(self.sums[:5].clone(), context).tolist()
        return {"train_loss": loss / images, "train_ce": ce / images, "train_align": align / images,
                "train_top1": correct / images, "images": images}


def running(read: dict[str, float]) -> dict[str, str]:
    """Mean loss and accuracy so far on this process (for the progress display), from `EpochTotals.read`."""
    images = max(read["images"], 1)
    return {"loss": f"{read['loss'] / images:.3f}", "acc": f"{read['correct'] / images:.3f}"}


def supports_bf16_autocast(device: torch.device) -> bool:
    """Whether bf16 autocast runs on `device` (every CPU; a GPU from Ampere on)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" or torch.amp.is_autocast_available(device.type)


def check_amp(amp: bool, device: torch.device) -> None:
    """`ConfigError` when `train.amp` asks for bf16 autocast on a device without it."""
    if amp and not supports_bf16_autocast(device):
        raise ConfigError(f"train.amp=true: {device} has no bf16 autocast (a GPU from Ampere on has); "
                          "set train.amp=false")


def make_optimizer(model: nn.Module, train_cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with the config's learning rate and weight decay over the model's parameter groups
    (`KgnetModel.parameter_groups`: a part may train at its own rate); the fused kernel where torch
    has one.

    Fused AdamW updates every parameter in one kernel and keeps its step counters on the
    device, so a GPU step launches a few kernels instead of one per parameter group and never
    reads a counter back.
    """
    fused = device.type in ("cuda", "cpu") and all(p.is_floating_point() for p in model.parameters())
    return torch.optim.AdamW(model.parameter_groups(train_cfg.lr, train_cfg.backbone_lr_scale), lr=train_cfg.lr,
                             weight_decay=train_cfg.weight_decay, fused=fused or None)


class TrainingStep:
    """One optimiser step of a variant, without a host sync.

    Forward (under bf16 autocast with `train.amp`; through `torch.compile` with
    `train.compile`), the head's loss for the epoch, backward, AdamW and the learning-rate
    schedule; the running sums stay on the device (`EpochTotals`): nothing in a step reads a
    device value on the host, so a GPU queues step after step; `train_variant` reads the totals
    every `POSTFIX_EVERY` steps.
    """

    def __init__(self, model: nn.Module, head, optimizer: torch.optim.Optimizer,
                 scheduler: torch.optim.lr_scheduler.LRScheduler, train_cfg: TrainConfig, *, seen: torch.Tensor,
                 logit_adjustment: torch.Tensor | None = None) -> None:
        """Args:
            model: The model (or its DDP wrapper) to train.
            head: The model's head, whose `loss` the step takes.
            optimizer: Its optimiser (`make_optimizer`).
            scheduler: The learning-rate schedule, stepped after every optimiser step.
            train_cfg: `amp` and `compile`.
            seen: [K] bool, the classes trained on (the others are masked out of the loss).
            logit_adjustment: [K] added to the logits in the cross-entropy (`losses.logit_adjustment`).
        """
        self.optimizer, self.scheduler, self.train_cfg, self.head = optimizer, scheduler, train_cfg, head
        self.forward = torch.compile(model) if train_cfg.compile else model
        self.seen, self.logit_adjustment = seen, logit_adjustment
        self.device = seen.device

    def __call__(self, images: torch.Tensor, targets: torch.Tensor, totals: EpochTotals, epoch: int) -> None:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.train_cfg.amp):
            out = self.forward(images)
            ce, logits = cross_entropy(out.logits, targets, seen=self.seen, logit_adjustment=self.logit_adjustment)
            loss, align = self.head.loss(out, ce, targets, seen=self.seen, epoch=epoch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        totals.add(loss, ce, align, logits, targets)


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


#: Fewer optimiser steps than this and a from-scratch model usually ends near chance.
FEW_STEPS = 100


@dataclass(frozen=True)
class StepPlan:
    """The optimiser steps a run takes, computed once: what the trainer runs and what its
    messages state (a warning that counted differently once named 68 steps for a run of 102).

    Attributes:
        train_images: Images in the training set.
        batch_size: The global batch (`train.batch_size`).
        epochs: `train.epochs`.
        passes: Passes over the training set per epoch (more than 1 when `train.min_steps`
            asks for more steps than the epochs give, `epoch_passes`).
        steps_per_epoch: Optimiser steps per epoch.
        rank_batch: Images each process takes a step (`batch_size // world_size`).
    """

    train_images: int
    batch_size: int
    epochs: int
    passes: int
    steps_per_epoch: int
    rank_batch: int

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch


def step_plan(train_images: int, train_cfg: TrainConfig, world_size: int = 1) -> StepPlan:
    """The `StepPlan` of `train_images` images under `train_cfg`, on `world_size` processes
    (each takes `batch_size // world_size` images a step)."""
    rank_batch = max(1, train_cfg.batch_size // world_size)
    passes = epoch_passes(train_images, train_cfg.batch_size, train_cfg.epochs, train_cfg.min_steps)
    steps_per_epoch = passes * max(1, train_images // (rank_batch * world_size))
    return StepPlan(train_images, train_cfg.batch_size, train_cfg.epochs, passes, steps_per_epoch, rank_batch)


def short_training_warning(plan: StepPlan) -> str | None:
    """A sentence when the run takes fewer than `FEW_STEPS` optimiser steps
    (`samples_per_class=30, epochs=3, min_steps=0` is 12 steps of 64 and ends at chance), else
    None: few images per class need more steps, not the full-data budget."""
    if plan.epochs == 0 or plan.total_steps >= FEW_STEPS:
        return None
    return (f"training takes only {plan.total_steps} optimiser steps ({plan.epochs} epochs x "
            f"{plan.steps_per_epoch} batches of {plan.batch_size} from {plan.train_images} training images), which "
            f"usually ends near chance; raise train.min_steps to {FEW_STEPS} or more (the default is "
            f"{TrainConfig().min_steps}), or train.epochs to {-(-FEW_STEPS // plan.steps_per_epoch)} or more")


def data_parallel(model: nn.Module, device: torch.device) -> DistributedDataParallel:
    """`model` in DistributedDataParallel, as every training process wraps it under torchrun.

    Every model uses every parameter in every step (no part is built that its forward does not
    run), except where the model says a step leaves some idle (`KgnetModel.has_idle_parameters`:
    an alignment stage, which trains no classifier, an edgeless graph, a backbone's pooling under
    a head that reads the tokens): only then does DDP look for unused parameters.
    """
    return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None,
                                   find_unused_parameters=model.has_idle_parameters())


def train_variant(
    name: str,
    config: Config,
    model: nn.Module,
    bundle: DataBundle,
    folder: Path,
    context: DistributedContext,
    *,
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
    total_epochs = train_cfg.epochs
    check_amp(train_cfg.amp, device)
    frozen = not train_cfg.backbone_lr_scale
    if frozen:
        model.freeze_backbone()  # before DDP, which registers the weights that take gradients
    optimizer = make_optimizer(model, train_cfg, device)
    # train.batch_size is the global batch: each of N processes takes batch_size / N images a step,
    # and the same images as one process would (`epoch_order`).
    plan = step_plan(len(bundle.train), train_cfg, context.world_size)
    passes, steps_per_epoch, rank_batch = plan.passes, plan.steps_per_epoch, plan.rank_batch
    total_steps = max(1, plan.total_steps)
    if passes > 1 and context.is_primary:
        log.info("%s: %d images make %d steps in %d epochs, fewer than train.min_steps=%d: each epoch passes "
                 "over them %d times (%d steps)", name, len(bundle.train), total_steps // passes, total_epochs,
                 train_cfg.min_steps, passes, total_steps)
    warmup = min(total_steps // 10, 500)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: (step + 1) / (warmup + 1) if step < warmup
        else 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total_steps - warmup)))),
    )
    result = VariantResult(name, model, amp=train_cfg.amp, compile=train_cfg.compile)
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
    ddp = data_parallel(model, device) if context.enabled else model
    seen = torch.zeros(bundle.num_classes, dtype=torch.bool, device=device)
    seen[bundle.seen_classes] = True
    step = start_epoch * steps_per_epoch
    # classes with fewer images are not out-voted by their prior (every variant alike)
    adjustment = logit_adjustment(bundle.train.labels, bundle.num_classes, train_cfg.logit_adjust_tau)
    train_step = TrainingStep(ddp, model.head, optimizer, scheduler, train_cfg, seen=seen,
                              logit_adjustment=adjustment.to(device) if adjustment is not None else None)

    checked_val = epoch_validation(bundle.val, train_cfg.val_images, config.seed)
    for epoch in range(start_epoch, total_epochs):
        stage = 1 if epoch < model.head.align_epochs else 2
        torch.manual_seed(epoch_seed(config.seed, context.rank, epoch))
        loader = _epoch_batches(bundle, rank_batch, config, context, epoch, passes)
        ddp.train()
        if frozen:
            model.freeze_backbone()
        totals = EpochTotals(device)
        checked = functools.partial(_checked, variant=name, epoch=epoch, first_step=step, checkpoint=checkpoint,
                                    lr=train_cfg.lr)
        started = time.perf_counter()
        bar = progress(loader, desc=f"{name} epoch {epoch + 1}/{total_epochs} (stage {stage})", unit="batch",
                       total=steps_per_epoch, enabled=show_progress and context.is_primary)
        for images, targets in bar:
            train_step(images.to(device, non_blocking=True), targets.to(device, non_blocking=True), totals, epoch)
            step += 1
            if step % POSTFIX_EVERY == 0:
                bar.set_postfix(**running(checked(totals.read())))
        checked(totals.read())
        seconds = time.perf_counter() - started
        means = totals.reduce(context)
        val = predict(ddp, checked_val, device=device, context=context, embeddings=False)
        row = {
            "epoch": epoch + 1, "stage": stage,
            **{k: means[k] for k in ("train_loss", "train_ce", "train_align", "train_top1")},
            "val_top1": topk_accuracy(val.logits, val.labels, 1), "val_images": len(checked_val),
            "steps": step, "lr": scheduler.get_last_lr()[0], "seconds": seconds,
        }
        result.history.append(row)
        result.train_seconds += seconds
        result.train_images += int(means["images"])
        if context.is_primary:
            log.info("%s epoch %d/%d: loss %.4f, train top-1 %.4f, val top-1 %.4f on %d images (%.0fs)", name,
                     epoch + 1, total_epochs, row["train_loss"], row["train_top1"], row["val_top1"], len(checked_val),
                     seconds)
            _write_log(folder / "log.csv", result.history)
            save_training_state(checkpoint, {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "epoch": epoch, "history": result.history,
                "train_seconds": result.train_seconds, "train_images": result.train_images,
                "config": config_to_dict(config),  # what --resume compares config.yaml with
            })
    return result


def epoch_validation(val, size: int | None, seed: int):
    """The validation images scored after every epoch: a class-stratified sample of `size`
    (`train.val_images`; None = all of `val`), the same every epoch."""
    if size is None or size >= len(val):
        return val
    return val.subset(stratified_sample(val.labels.numpy(), size, seed=seed))


def epoch_passes(train_images: int, batch_size: int, epochs: int, min_steps: int) -> int:
    """How many times each epoch passes over the training set so the run takes at least
    `min_steps` optimiser steps (1 when the epochs already do)."""
    steps = max(1, train_images // batch_size) * epochs
    if epochs == 0 or steps >= min_steps:
        return 1
    return math.ceil(min_steps / steps)


def class_balanced_draw(labels: torch.Tensor, *, seed: int) -> list[int] | None:
    """As many training positions as there are images, drawn with replacement so that every
    class is equally likely (a class with few images is repeated, differently augmented);
    None when the classes already have equal counts (the plain pass over the set)."""
    counts = unequal_class_counts(labels)
    if counts is None:
        return None
    weights = 1.0 / counts[labels.long()].double()
    generator = torch.Generator().manual_seed(seed)
    return torch.multinomial(weights, len(labels), replacement=True, generator=generator).tolist()


def _epoch_batches(bundle, rank_batch: int, config: Config, context: DistributedContext, epoch: int, passes: int):
    """The batches of one epoch: `passes` passes over the training set, each in its own order
    and with its own augmentation (pass p of epoch e is augmented as epoch e * passes + p)."""
    for p in range(passes):
        index = epoch * passes + p
        bundle.set_epoch(index)
        order = epoch_order(len(bundle.train), rank_batch, seed=epoch_seed(config.seed, 0, index), context=context)
        if config.train.balanced_sampling:
            drawn = class_balanced_draw(bundle.train.labels, seed=epoch_seed(config.seed, 1, index))
            order = order if drawn is None else [drawn[i] for i in order]
        yield from DataLoader(bundle.train, batch_size=rank_batch, sampler=order,
                              num_workers=config.data.num_workers)


def _checked(read: dict[str, float], *, variant: str, epoch: int, first_step: int, checkpoint: Path,
             lr: float) -> dict[str, float]:
    """`read` (`EpochTotals.read` of the epoch that began at step `first_step`), or
    `TrainingDiverged` when one of the epoch's losses was not finite."""
    if read["bad_step"] >= 0:
        raise TrainingDiverged(
            f"variant {variant!r}: the loss became {read['bad_loss']} at step {first_step + int(read['bad_step'])} "
            f"(epoch {epoch + 1}); "
            f"the last good checkpoint is {checkpoint if checkpoint.exists() else 'none (first epoch)'}; "
            f"train again into a new folder with a lower train.lr (now {lr}); --resume keeps the saved "
            f"settings and would diverge the same way"
        )
    return read


def _write_log(path: Path, history: list[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=LOG_FIELDS)
        writer.writeheader()
        writer.writerows(history)


def read_history(path: Path) -> list[dict[str, Any]]:
    """The rows of a `log.csv` written by `train_variant` (empty when there is none)."""
    if not path.is_file():
        return []
    with open(path, newline="") as handle:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(handle)]
