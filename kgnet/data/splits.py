"""Which images train, validate and test: a seeded stratified split, low-data subsampling, held-out classes.

Validation comes out of the official training split and the official test split is never used
for selection. Every random choice is drawn per class from (seed, purpose, class), so a class's
split does not change when another class is held out or subsampled, and with one seed the k
images kept per class are a subset of the k+1 kept (low-data curves are nested). The same seed
gives the same split on every rank and in every variant; pass the run's base seed, not
seed + rank.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from kgnet.errors import KgnetError

log = logging.getLogger(__name__)

_SPLIT, _SUBSAMPLE = 0, 1  # purposes: independent random streams


def _rng(seed: int, purpose: int, label: int, keys: Sequence[int] | None = None) -> np.random.Generator:
    """The random draws of class `label`, keyed by its label in the whole data set (`keys[label]`
    when a run keeps some of its classes, `data.classes`), so a class draws the same images in
    every run of one seed, whichever other classes the run has."""
    return np.random.default_rng([seed % 2**64, purpose, label if keys is None else int(keys[label])])


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int,
                     keys: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into train and validation with `val_fraction` of every class in validation.

    Each class with at least two images gives round(n * val_fraction) of them, at least one
    and at most n - 1, to validation (none when `val_fraction` is 0).

    Args:
        labels: int64 [N] class per image.
        val_fraction: Fraction in [0, 1).
        seed: Base seed.
        keys: Each label's label in the whole data set (`_rng`); None = the labels themselves.

    Returns:
        Sorted train indices and sorted validation indices (disjoint, covering all of [0, N)).
    """
    if not 0 <= val_fraction < 1:
        raise KgnetError(f"data.val_fraction must be in [0, 1), got {val_fraction}")
    train: list[np.ndarray] = []
    val: list[np.ndarray] = []
    for label in np.unique(labels):
        members = _rng(seed, _SPLIT, int(label), keys).permutation(np.flatnonzero(labels == label))
        n_val = 0
        if val_fraction > 0 and len(members) >= 2:
            n_val = min(max(round(len(members) * val_fraction), 1), len(members) - 1)
        val.append(members[:n_val])
        train.append(members[n_val:])
    empty = np.empty(0, dtype=np.int64)
    return (np.sort(np.concatenate(train)) if train else empty,
            np.sort(np.concatenate(val)) if val else empty)


def subsample_per_class(labels: np.ndarray, indices: np.ndarray, k: int, seed: int,
                        class_names: Sequence[str] | None = None, *, what: str = "data.samples_per_class",
                        split: str = "training", keys: Sequence[int] | None = None) -> np.ndarray:
    """Keep `k` of `indices` per class, chosen at random (a class with fewer keeps all, with a warning).

    Args:
        labels: int64 [N] class per image of the whole set `indices` index into.
        indices: The candidate indices (e.g. the training part of a split).
        k: Images to keep per class, > 0.
        seed: Base seed.
        class_names: For the warning.
        what: The setting `k` came from, for the messages (e.g. "data.test_per_class").
        split: Which images `indices` are, for the warning (e.g. "test").
        keys: Each label's label in the whole data set (`_rng`); None = the labels themselves.

    Returns:
        Sorted kept indices.
    """
    if k <= 0:
        raise KgnetError(f"{what} must be > 0, got {k}")
    indices = np.asarray(indices, dtype=np.int64)
    kept: list[np.ndarray] = []
    short: list[str] = []
    for label in np.unique(labels[indices]):
        members = indices[labels[indices] == label]
        if len(members) < k:
            name = class_names[label] if class_names is not None else str(label)
            short.append(f"{name} ({len(members)})")
        kept.append(_rng(seed, _SUBSAMPLE, int(label), keys).permutation(members)[:k])
    if short:
        log.warning("%s=%d, but these classes have fewer %s images and keep all of them: %s",
                    what, k, split, ", ".join(short))
    return np.sort(np.concatenate(kept)) if kept else np.empty(0, dtype=np.int64)


def resolve_class_names(names: Sequence[str], class_names: Sequence[str],
                        what: str = "data.held_out_classes") -> list[int]:
    """The label indices of `names`, each of which must be one of `class_names` exactly.

    Raises:
        KgnetError: Naming every unknown name with its closest matches.
    """
    index = {name: i for i, name in enumerate(class_names)}
    lowered: dict[str, list[str]] = {}
    for name in class_names:
        lowered.setdefault(name.lower(), []).append(name)
    problems = []
    for name in names:
        if name in index:
            continue
        close = lowered.get(name.lower()) or [
            m for low in difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.6)
            for m in lowered[low]]
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        problems.append(f"{name!r}{hint}")
    if problems:
        shown = ", ".join(repr(c) for c in class_names[:20])
        more = f", ... ({len(class_names)} in all)" if len(class_names) > 20 else ""
        raise KgnetError(f"{what}: unknown class {'; '.join(problems)}. Classes: {shown}{more}")
    return sorted({index[name] for name in names})


@dataclass(frozen=True)
class SplitIndices:
    """Indices into the official splits, and which classes are trained on.

    Attributes:
        train: Indices into the official training split used for training.
        val: Indices into the official training split used for validation.
        test: Indices into the official test split (all of it: held-out classes stay).
        seen_classes: Label indices trained on.
        unseen_classes: Label indices held out (evaluated zero-shot on the test split).
        val_unseen: Indices into the official training split of the held-out classes' share
            of validation (never trained on): their zero-shot validation images.
        novel_classes: Label indices of the seen classes trained on few images (`data.novel_classes`).
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    seen_classes: list[int]
    unseen_classes: list[int]
    val_unseen: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    novel_classes: list[int] = field(default_factory=list)


def make_splits(train_labels: np.ndarray, test_labels: np.ndarray, class_names: Sequence[str], *,
                val_fraction: float = 0.1, samples_per_class: int | None = None,
                held_out_classes: Sequence[str] = (), novel_classes: Sequence[str] = (),
                novel_samples_per_class: int = 1, seed: int = 0, keys: Sequence[int] | None = None) -> SplitIndices:
    """Split, subsample and hold out classes, in that order.

    The validation split is taken from the whole training split first (so it is the same
    whatever `samples_per_class` is), then held-out classes leave train and validation, then
    the training part is subsampled.

    Args:
        train_labels: int64 class of each official training image.
        test_labels: int64 class of each official test image.
        class_names: Name of each label.
        val_fraction: Fraction of each class's training images held back for validation.
        samples_per_class: Training images kept per class; None keeps all.
        held_out_classes: Class names removed from train and validation.
        novel_classes: Class names trained on `novel_samples_per_class` images each (their
            validation images stay, so designs are chosen on them too).
        novel_samples_per_class: Training images kept per novel class.
        seed: The run's base seed.
        keys: Each label's label in the whole data set, when the run keeps some of its classes
            (`data.classes`): a class then gets the images it gets in a run of every class.

    Raises:
        KgnetError: Unknown held-out or novel class names, a class both, all classes held
            out or novel, or bad fractions.
    """
    train_labels = np.asarray(train_labels, dtype=np.int64)
    unseen = resolve_class_names(held_out_classes, class_names)
    seen = [c for c in range(len(class_names)) if c not in set(unseen)]
    if not seen:
        raise KgnetError("data.held_out_classes holds out every class; nothing is left to train on")
    novel = resolve_class_names(novel_classes, class_names, "data.novel_classes")
    both = [class_names[c] for c in novel if c in set(unseen)]
    if both:
        raise KgnetError(f"data.novel_classes and data.held_out_classes both name {', '.join(both)}: a class is "
                         "either held out (no training images) or novel (data.novel_samples_per_class of them)")
    if novel and len(novel) == len(seen):
        raise KgnetError("data.novel_classes names every trained class; leave some base classes with "
                         "data.samples_per_class images (or set data.samples_per_class itself)")
    train, val = stratified_split(train_labels, val_fraction, seed, keys)
    val_unseen = val[np.isin(train_labels[val], unseen)]
    if unseen:
        train = train[~np.isin(train_labels[train], unseen)]
        val = val[~np.isin(train_labels[val], unseen)]
    is_novel = np.isin(train_labels[train], novel)
    novel_train, train = train[is_novel], train[~is_novel]
    if samples_per_class is not None:
        train = subsample_per_class(train_labels, train, samples_per_class, seed, class_names, keys=keys)
    if novel:
        novel_train = subsample_per_class(train_labels, novel_train, novel_samples_per_class, seed, class_names,
                                          what="data.novel_samples_per_class", keys=keys)
        train = np.sort(np.concatenate([train, novel_train]))
    return SplitIndices(train, val, np.arange(len(test_labels), dtype=np.int64), seen, unseen, val_unseen,
                        novel_classes=novel)
