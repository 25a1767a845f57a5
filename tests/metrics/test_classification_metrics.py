"""Accuracy metrics on hand-computed cases."""

from __future__ import annotations

import math

import torch

from kgnet.metrics.classification import (generalized_zero_shot, per_class_accuracy, restricted_top1,
                                          topk_accuracy)

# 4 images, 3 classes; rows are logits, the argmax is the prediction.
LOGITS = torch.tensor([
    [3.0, 2.0, 1.0],   # truth 0, predicted 0
    [3.0, 2.0, 1.0],   # truth 1, predicted 0 (1 is second)
    [0.0, 1.0, 2.0],   # truth 2, predicted 2
    [0.0, 2.0, 1.0],   # truth 2, predicted 1 (2 is second)
])
TARGETS = torch.tensor([0, 1, 2, 2])


def test_topk_and_per_class() -> None:
    assert topk_accuracy(LOGITS, TARGETS, 1) == 0.5
    assert topk_accuracy(LOGITS, TARGETS, 2) == 1.0
    assert topk_accuracy(LOGITS, TARGETS, 5) == 1.0  # k capped at the class count
    assert per_class_accuracy(LOGITS, TARGETS, ["a", "b", "c"]) == {"a": 1.0, "b": 0.0, "c": 0.5}


def test_zero_shot_restricted_and_generalized() -> None:
    # Unseen = {1, 2}: choosing among them only, image 1 -> 1 (right), 2 -> 2, 3 -> 1 (wrong).
    assert math.isclose(restricted_top1(LOGITS, TARGETS, [1, 2]), 2 / 3, rel_tol=1e-6)
    gzsl = generalized_zero_shot(LOGITS, TARGETS, seen=[0], unseen=[1, 2])
    # Among all classes: seen class 0 accuracy 1; unseen class 1: 0, class 2: 1/2 -> mean 1/4.
    assert gzsl["gzsl_seen"] == 1.0 and gzsl["gzsl_unseen"] == 0.25
    assert math.isclose(gzsl["gzsl_harmonic"], 2 * 1.0 * 0.25 / 1.25, rel_tol=1e-6)
