"""Choosing the calibrated-stacking constant of a run with held-out classes, without the test split.

An embedding model scores the classes it trained on higher than the ones it never saw, so
among all classes it rarely predicts an unseen one. Calibrated stacking (Chao et al., ECCV
2016) subtracts a constant gamma from the seen classes' logits first. The test split may not
choose gamma, and the validation split holds no image of a held-out class, so some seen classes
play unseen instead (pseudo-unseen): a calibration model of the same variant is trained with
them held out as well, and gamma is the constant that maximises its GZSL harmonic mean on the
validation split, where the pseudo-unseen classes' images are its unseen images. The
calibration model never sees the test split (`calibration_bundle` leaves it empty).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import torch

from kgnet.data.builder import DataBundle
from kgnet.engine.scoring import predict
from kgnet.errors import ConfigError
from kgnet.metrics.classification import best_gamma

log = logging.getLogger(__name__)

#: Fewer validation images than this per pseudo-unseen class and the choice of gamma rests on
#: a handful of images: a warning says so.
FEW_VALIDATION_IMAGES = 20
_PSEUDO_UNSEEN = 2  # purpose of the random stream (splits.py uses 0 and 1)


def pseudo_unseen_classes(seen: list[int], unseen: list[int], seed: int) -> list[int]:
    """A seeded choice of as many seen classes as are held out (at most half the seen ones),
    which the calibration model holds out as well."""
    count = min(len(unseen), len(seen) // 2)
    if count == 0:
        return []
    rng = np.random.default_rng([seed % 2**64, _PSEUDO_UNSEEN])
    return sorted(int(c) for c in rng.choice(np.asarray(seen), size=count, replace=False))


def check_calibration(bundle: DataBundle, mode: str, seed: int) -> None:
    """`ConfigError` when `train.gzsl_calibration=pseudo-unseen` cannot choose a constant for
    this data (checked before anything is trained), and a warning when its choice rests on few
    validation images."""
    if mode == "none" or not bundle.unseen_classes:
        return
    remedy = "or set train.gzsl_calibration=none (no calibration constant)"
    if len(bundle.seen_classes) < 2:
        raise ConfigError("train.gzsl_calibration=pseudo-unseen needs at least 2 seen classes (one plays unseen); "
                          f"hold out fewer classes in data.held_out_classes, {remedy}")
    if len(bundle.val) == 0:
        raise ConfigError("train.gzsl_calibration=pseudo-unseen chooses its constant on the validation split, which "
                          f"is empty; set data.val_fraction > 0, {remedy}")
    pseudo = pseudo_unseen_classes(bundle.seen_classes, bundle.unseen_classes, seed)
    counts = {bundle.class_names[c]: int((bundle.val.labels == c).sum()) for c in pseudo}
    if min(counts.values()) < FEW_VALIDATION_IMAGES:
        shown = ", ".join(f"{name} {n}" for name, n in counts.items())
        log.warning("train.gzsl_calibration: the calibration constant is chosen on few validation images of the "
                    "pseudo-unseen classes (%s; fewer than %d makes a noisy choice); raise data.val_fraction",
                    shown, FEW_VALIDATION_IMAGES)


def calibration_bundle(bundle: DataBundle, pseudo_unseen: list[int]) -> DataBundle:
    """The run's data with `pseudo_unseen` held out of training too: same training images of
    the other classes, the same validation split (which still holds the pseudo-unseen classes'
    images) and an empty test split."""
    train_labels = bundle.train.labels.numpy()
    keep = np.flatnonzero(~np.isin(train_labels, pseudo_unseen))
    return dataclasses.replace(
        bundle, train=bundle.train.subset(keep), test=bundle.test.subset(np.empty(0, dtype=np.int64)),
        seen_classes=[c for c in bundle.seen_classes if c not in pseudo_unseen],
        unseen_classes=sorted([*bundle.unseen_classes, *pseudo_unseen]))


def validation_gamma(model: torch.nn.Module, calibration: DataBundle, pseudo_unseen: list[int], *,
                     device: torch.device, context=None) -> float:
    """The constant that maximises the calibration model's GZSL harmonic mean on the validation
    split: its seen classes' images against the pseudo-unseen classes' images, choosing among
    all classes."""
    val = predict(model, calibration.val, device=device, context=context, embeddings=False)
    return best_gamma(val.logits, val.labels, calibration.seen_classes, calibration.unseen_classes)
