"""Accuracy numbers every run reports: top-1, top-k, per class, and zero-shot top-1."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor


def topk_accuracy(logits: Tensor, targets: Tensor, k: int = 1) -> float:
    """Fraction of rows whose target is among the k highest logits (k capped at the class count)."""
    if len(targets) == 0:
        return float("nan")
    k = min(k, logits.shape[1])
    hits = (logits.topk(k, dim=1).indices == targets[:, None]).any(dim=1)
    return hits.float().mean().item()


def per_class_accuracy(logits: Tensor, targets: Tensor, class_names: Sequence[str]) -> dict[str, float]:
    """Class name -> top-1 accuracy on that class's images (classes without images are left out)."""
    predictions = logits.argmax(dim=1)
    result = {}
    for index, name in enumerate(class_names):
        mask = targets == index
        if mask.any():
            result[name] = (predictions[mask] == index).float().mean().item()
    return result


def restricted_top1(logits: Tensor, targets: Tensor, classes: Sequence[int]) -> float:
    """Top-1 when choosing only among `classes`, on the images of those classes (zero-shot)."""
    allowed = torch.as_tensor(list(classes), dtype=torch.long)
    mask = torch.isin(targets, allowed)
    if not mask.any():
        return float("nan")
    choice = allowed[logits[mask][:, allowed].argmax(dim=1)]
    return (choice == targets[mask]).float().mean().item()


def generalized_zero_shot(logits: Tensor, targets: Tensor, seen: Sequence[int], unseen: Sequence[int]) -> dict[str, float]:
    """Generalized zero-shot accuracy (Xian et al., 2018): predictions among ALL classes.

    `gzsl_seen` / `gzsl_unseen` are per-class mean top-1 accuracies over the seen / unseen
    classes' images; `gzsl_harmonic` is their harmonic mean (0 when either is 0).
    """
    predictions = logits.argmax(dim=1)
    s, u = mean_class_accuracy(predictions, targets, seen), mean_class_accuracy(predictions, targets, unseen)
    return {"gzsl_seen": s, "gzsl_unseen": u, "gzsl_harmonic": _harmonic(s, u)}


def generalized_few_shot(logits: Tensor, targets: Tensor, novel: Sequence[int], base: Sequence[int]) -> dict[str, float]:
    """Generalized few-shot accuracy (Hariharan & Girshick, 2017): predictions among ALL classes.

    `novel_top1` / `base_top1` are per-class mean top-1 accuracies over the images of the
    novel classes (trained on few images) / the base classes; `gfsl_harmonic` is their
    harmonic mean (0 when either is 0).
    """
    predictions = logits.argmax(dim=1)
    n, b = mean_class_accuracy(predictions, targets, novel), mean_class_accuracy(predictions, targets, base)
    return {"novel_top1": n, "base_top1": b, "gfsl_harmonic": _harmonic(n, b)}


def _harmonic(a: float, b: float) -> float:
    return float(harmonic_mean(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64)))


def mean_class_accuracy(predictions: Tensor, targets: Tensor, classes: Sequence[int]) -> float:
    """Mean over `classes` (those with images) of the share of each class's images predicted as it; nan if none."""
    accuracies = [(predictions[targets == c] == c).float().mean().item() for c in classes if (targets == c).any()]
    return sum(accuracies) / len(accuracies) if accuracies else float("nan")


def seen_offset(logits: Tensor, seen: Sequence[int], gamma: float) -> Tensor:
    """Calibrated stacking (Chao et al., ECCV 2016): `logits` with `gamma` subtracted from the
    seen classes' columns, so a choice among all classes can land on an unseen class."""
    shifted = logits.clone()
    shifted[:, list(seen)] -= gamma
    return shifted


def seen_unseen_curve(logits: Tensor, targets: Tensor, seen: Sequence[int],
                      unseen: Sequence[int]) -> tuple[Tensor, Tensor, Tensor]:
    """Per-class mean seen and unseen accuracy among all classes at every distinct `gamma` of `seen_offset`.

    With gamma subtracted from the seen logits, an image goes to its best unseen class exactly
    when gamma exceeds d = (best seen logit) - (best unseen logit), and otherwise to its best
    seen class; so the accuracies only change at the images' d, and one gamma inside each gap
    (and one beyond either end) gives every point of the curve. Images of classes in neither
    list are left out.

    Returns:
        gammas [P] (increasing), seen accuracy [P] (non-increasing), unseen accuracy [P]
        (non-decreasing): from gamma below every d (no image goes to an unseen class) to gamma
        above every d (every image does).
    """
    seen_t = torch.as_tensor(list(seen), dtype=torch.long)
    unseen_t = torch.as_tensor(list(unseen), dtype=torch.long)
    keep = torch.isin(targets, torch.cat([seen_t, unseen_t]))
    logits, targets = logits[keep].double(), targets[keep]
    best_seen, seen_arg = logits[:, seen_t].max(dim=1)
    best_unseen, unseen_arg = logits[:, unseen_t].max(dim=1)
    d, order = (best_seen - best_unseen).sort()
    targets = targets[order]
    seen_hit = (seen_t[seen_arg[order]] == targets).double()
    unseen_hit = (unseen_t[unseen_arg[order]] == targets).double()
    # per-class mean = sum over images of hit / (images of its class * classes with images)
    counts = torch.bincount(targets, minlength=int(max(seen_t.max(), unseen_t.max())) + 1).double()
    is_seen = torch.isin(targets, seen_t)
    seen_classes = int((counts[seen_t] > 0).sum())
    unseen_classes = int((counts[unseen_t] > 0).sum())
    weight = 1.0 / counts[targets]
    seen_w = torch.where(is_seen, weight / max(seen_classes, 1), 0.0)
    unseen_w = torch.where(~is_seen, weight / max(unseen_classes, 1), 0.0)
    zero = d.new_zeros(1)
    # split i: the first i images (smallest d) go to their unseen class, the others to their seen class
    unseen_acc = torch.cat([zero, (unseen_hit * unseen_w).cumsum(0)])
    seen_acc = torch.cat([(seen_hit * seen_w).flip(0).cumsum(0).flip(0), zero])
    splits = torch.cat([torch.tensor([True]), d[1:] > d[:-1], torch.tensor([True])]) if len(d) else \
        torch.tensor([True])
    gammas = torch.cat([d[:1] - 1, (d[:-1] + d[1:]) / 2, d[-1:] + 1]) if len(d) else zero
    nan = float("nan")
    if not seen_classes:
        seen_acc = torch.full_like(seen_acc, nan)
    if not unseen_classes:
        unseen_acc = torch.full_like(unseen_acc, nan)
    return gammas[splits], seen_acc[splits].clamp(0, 1), unseen_acc[splits].clamp(0, 1)


def harmonic_mean(seen: Tensor, unseen: Tensor) -> Tensor:
    """2su / (s + u), 0 where both are 0."""
    total = seen + unseen
    return torch.where(total > 0, 2 * seen * unseen / total.clamp_min(1e-300), torch.zeros_like(total))


def best_gamma(logits: Tensor, targets: Tensor, seen: Sequence[int], unseen: Sequence[int]) -> float:
    """The `seen_offset` constant that maximises the GZSL harmonic mean on these images.

    Call it on validation images only (where some seen classes play unseen): a constant chosen
    on the test split would be tuned to the numbers it reports. Among equally good constants
    the one closest to 0 wins (the smallest change to the model's own scores).

    Raises:
        ValueError: No image of a seen class or none of an unseen class (nothing to balance).
    """
    gammas, s, u = seen_unseen_curve(logits, targets, seen, unseen)
    if bool(s.isnan().any() or u.isnan().any()):
        raise ValueError("choosing the GZSL constant needs images of seen and of unseen classes")
    h = harmonic_mean(s, u)
    best = h == h.max()
    return float(gammas[best][gammas[best].abs().argmin()])


def area_under_seen_unseen_curve(logits: Tensor, targets: Tensor, seen: Sequence[int],
                                 unseen: Sequence[int]) -> float:
    """AUSUC (Chao et al., ECCV 2016): the area under seen accuracy against unseen accuracy as
    the `seen_offset` constant sweeps over all values; threshold-free, it chooses nothing
    (trapezoids between the curve's points, so 1 only for a model perfect either way)."""
    _, s, u = seen_unseen_curve(logits, targets, seen, unseen)
    if bool(s.isnan().any() or u.isnan().any()):
        return float("nan")
    return float(torch.trapezoid(s, u))
