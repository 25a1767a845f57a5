"""Held-out classes in training and in scoring, on hand-made numbers: the training loss never
sees them, and the scores restrict each choice to the classes it is defined over."""

from __future__ import annotations

import pytest
import torch

from kgnet.engine.losses import cross_entropy
from kgnet.engine.scoring import Predictions, ScoringTask, score_predictions
from kgnet.models import HeadOutput, MLPHead, PrototypeHead

# ------------------------------------------------------------------ the training loss

SEEN = torch.tensor([True, True, False, True, False])  # classes 2 and 4 held out


def _loss(logits, embeddings, classes, stage=2):
    """The trainer's loss: the cross-entropy, and the head's (the prototype head's alignment, its
    first epoch alone; a head without one, `classes` None, adds nothing)."""
    targets = torch.tensor([0, 1, 3, 0])
    ce, masked = cross_entropy(logits, targets, seen=SEEN)
    mlp = MLPHead(in_dim=2, embed_dim=8, num_classes=5)
    head = mlp if classes is None else PrototypeHead(mlp=mlp, class_index=torch.arange(5), align_epochs=1,
                                                     align_weight=0.5, temperature=0.1)
    out = HeadOutput(logits, embeddings, class_embeddings=classes)
    loss, align = head.loss(out, ce, targets, seen=SEEN, epoch=stage - 1)
    return loss, ce, align, masked


def test_held_out_classes_are_no_choice_and_no_negative() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 5, generator=generator, requires_grad=True)
    embeddings = torch.randn(4, 8, generator=generator, requires_grad=True)
    classes = torch.randn(5, 8, generator=generator, requires_grad=True)
    loss, ce, align, masked = _loss(logits, embeddings, classes)
    loss.backward()
    # no gradient reaches a held-out class's logit or its class embedding ...
    assert float(logits.grad[:, ~SEEN].abs().max()) == 0.0 and float(classes.grad[~SEEN].abs().max()) == 0.0
    assert float(logits.grad[:, SEEN].abs().min()) > 0 and float(classes.grad[SEEN].abs().min()) > 0
    assert (masked.argmax(dim=1)[:, None] != torch.tensor([2, 4])).all()  # never predicted in training
    # ... so whatever they are, the loss is the same
    pushed_logits = logits.detach().clone()
    pushed_logits[:, ~SEEN] = 50.0
    pushed_classes = classes.detach().clone()
    pushed_classes[~SEEN] = embeddings.detach()[:2]  # as close to the images as can be
    again = _loss(pushed_logits, embeddings.detach(), pushed_classes)
    for before, after in zip((loss, ce, align), again[:3]):
        torch.testing.assert_close(after, before.detach())
    # while a seen class's logit counts
    seen_pushed = logits.detach().clone()
    seen_pushed[:, 1] += 5.0
    assert not torch.allclose(_loss(seen_pushed, embeddings.detach(), classes.detach())[1], ce.detach())


def test_stage_one_is_alignment_alone_and_the_baseline_has_none() -> None:
    logits, embeddings, classes = torch.randn(4, 5), torch.randn(4, 8), torch.randn(5, 8)
    loss, ce, align, _ = _loss(logits, embeddings, classes, stage=1)
    torch.testing.assert_close(loss, align)
    loss, ce, align, _ = _loss(logits, embeddings, classes, stage=2)
    torch.testing.assert_close(loss, ce + 0.5 * align)
    loss, ce, align, _ = _loss(logits, embeddings, None, stage=2)
    assert float(align) == 0.0 and torch.equal(loss, ce)


# ------------------------------------------------------------------ the scores

#: Classes 0 and 1 seen, 2 and 3 held out. Each row's logits rank the classes.
LOGITS = torch.tensor([
    [5.0, 1.0, 9.0, 0.0],  # a class-0 image: held-out class 2 scores highest, seen class 0 next
    [0.0, 4.0, 0.0, 1.0],  # a class-1 image: right among all classes
    [3.0, 0.0, 1.0, 2.0],  # a class-2 image: seen class 0 highest, held-out class 2 above class 3
    [9.0, 0.0, 1.0, 2.0],  # a class-3 image: seen class 0 highest, then class 3 among the held out
    [0.0, 6.0, 5.0, 1.0],  # a class-2 image: seen class 1 highest, class 2 first among the held out
])
LABELS = torch.tensor([0, 1, 2, 3, 2])


def test_each_score_chooses_among_its_classes() -> None:
    task = ScoringTask(class_names=["a", "b", "c", "d"], seen=[0, 1], unseen=[2, 3], silhouettes=False)
    scores = score_predictions(Predictions(LOGITS, None, LABELS), task)
    # top-1: the seen images (rows 0, 1), choosing among the seen classes: both right (row 0's
    # winner, held-out class 2, is not a choice there)
    assert scores["top1"] == 1.0
    # zero-shot: the held-out images (rows 2, 3, 4), choosing among the held-out classes:
    # row 2 -> class 3 (2.0 beats 1.0) wrong, row 3 -> class 3 right, row 4 -> class 2 right
    assert scores["zero_shot_top1"] == pytest.approx(2 / 3)
    # generalized zero-shot, among all classes: seen classes a 0/1, b 1/1 -> 0.5;
    # held-out c 0/2 (rows 2 and 4 go to a and b), d 0/1 -> 0.0; harmonic mean 0
    assert scores["gzsl_seen"] == pytest.approx(0.5) and scores["gzsl_unseen"] == 0.0
    assert scores["gzsl_harmonic"] == 0.0
    # per-class accuracy and the confusion matrix choose among all classes
    assert scores["per_class"] == {"a": 0.0, "b": 1.0, "c": 0.0, "d": 0.0}
    assert scores["confusion"] == [[0, 0, 1, 0], [0, 1, 0, 0], [1, 1, 0, 0], [1, 0, 0, 0]]


def test_a_calibration_constant_moves_the_choice_among_all_classes_only() -> None:
    task = ScoringTask(class_names=["a", "b", "c", "d"], seen=[0, 1], unseen=[2, 3], silhouettes=False,
                       gzsl_gamma=2.0)
    scores = score_predictions(Predictions(LOGITS, None, LABELS), task)
    # best seen minus best held-out logit per row: -4, 3, 1, 7, 1; with 2 subtracted from the seen
    # logits rows 0, 2 and 4 go to their best held-out class: c (wrong), d (wrong), c (right)
    assert scores["gzsl_gamma"] == 2.0
    assert scores["gzsl_calibrated_seen"] == pytest.approx(0.5)  # a 0/1, b 1/1
    assert scores["gzsl_calibrated_unseen"] == pytest.approx(0.25)  # c 1/2, d 0/1
    assert scores["gzsl_calibrated_harmonic"] == pytest.approx(1 / 3)
    assert scores["per_class"] == {"a": 0.0, "b": 1.0, "c": 0.5, "d": 0.0}
    assert scores["confusion"] == [[0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 1, 1], [1, 0, 0, 0]]
    # the uncalibrated choice, and every choice within the seen or the held-out classes, stay
    assert (scores["gzsl_seen"], scores["gzsl_unseen"], scores["gzsl_harmonic"]) == (0.5, 0.0, 0.0)
    assert scores["top1"] == 1.0 and scores["zero_shot_top1"] == pytest.approx(2 / 3)
    # (unseen, seen) as the constant sweeps: (0,1) (0,.5) (.25,.5) (.25,0) (.75,0)
    assert scores["gzsl_ausuc"] == pytest.approx(0.125)


def test_without_held_out_images_there_is_no_zero_shot_score() -> None:
    task = ScoringTask(class_names=["a", "b", "c", "d"], seen=[0, 1], unseen=[2, 3], silhouettes=False)
    scores = score_predictions(Predictions(LOGITS[:2], None, LABELS[:2]), task)  # a validation split
    assert "zero_shot_top1" not in scores and "gzsl_harmonic" not in scores and scores["top1"] == 1.0
