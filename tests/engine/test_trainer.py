"""The training loop's options and bookkeeping: `train.amp`, `train.compile`, fused AdamW, and the
device-side totals that replace a per-step non-finite check (tiny real runs on Fashion-MNIST)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from conftest import TINY_OVERRIDES
from kgnet.config import load_config

pytestmark = pytest.mark.usefixtures("one_thread")


#: The variant of each head tried: the concept head alone (the default kgnet), the composed model
#: (R-GCN concept vectors and infusion) and the prototype design.
HEAD_VARIANTS = {"concept": "kgnet", "composed": "kgnet-composed", "prototype": "kgnet-prototype"}


def _train(tmp_path: Path, *overrides: str, head: str = "prototype", watch=None):
    """`train_variant` of the variant with `head` (a key of HEAD_VARIANTS: the prototype head has
    its alignment epoch; the concept head, alone or composed, trains with cross-entropy) on 2
    images per class, batch 8, two epochs; `watch(model)` may register hooks before training."""
    from kgnet.data.builder import build_datasets
    from kgnet.data.cards import load_card
    from kgnet.engine.distributed import DistributedContext
    from kgnet.engine.trainer import train_variant
    from kgnet.kg.build import build_class_graph
    from kgnet.models import NoGraphEncoder, create_model, graph_hops
    from kgnet.variants import VARIANTS

    config = load_config(None, (*TINY_OVERRIDES, "data.samples_per_class=2", "train.batch_size=8",
                                "model.embed_dim=32", *overrides))
    variant = VARIANTS[HEAD_VARIANTS[head]]
    bundle = build_datasets(config.data, seed=0, augment=False)
    card = load_card("fashion_mnist")
    graph = build_class_graph(card.ontology, card.classes, wnids=card.wnids, hops=graph_hops(config, variant))
    model = create_model(config, graph, variant=variant, num_classes=10, in_chans=1, image_size=28)
    assert isinstance(model.graph_encoder, NoGraphEncoder) is (head == "concept")
    if watch is not None:
        watch(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = train_variant(variant.name, config, model, bundle, tmp_path, DistributedContext(), show_progress=False)
    changed = any(not torch.equal(before[k], v) for k, v in model.state_dict().items() if v.is_floating_point())
    return result, changed


def _scoring_head(model):
    """The module whose output is the class scores: the concept head, or the prototype head's MLP."""
    return getattr(model.head, "mlp", model.head)


def _finite_history(history: list[dict]) -> bool:
    return len(history) == 2 and all(math.isfinite(row[k]) for row in history
                                     for k in ("train_loss", "train_ce", "train_align", "train_top1", "val_top1"))


HEADS = pytest.mark.parametrize("head", list(HEAD_VARIANTS))


@HEADS
def test_default_training_is_fp32_eager_and_says_so(tmp_path: Path, head: str) -> None:
    dtypes = []
    result, changed = _train(tmp_path, head=head, watch=lambda model: _scoring_head(model).register_forward_hook(
        lambda module, args, out: dtypes.append(out[0].dtype)))
    assert changed and _finite_history(result.history)
    assert result.training_numbers()["amp"] is False and result.training_numbers()["compile"] is False
    assert set(dtypes) == {torch.float32}


@HEADS
def test_amp_trains_under_bf16_autocast_and_is_recorded(tmp_path: Path, head: str) -> None:
    dtypes = []
    result, changed = _train(tmp_path, "train.amp=true", head=head,
                             watch=lambda model: _scoring_head(model).register_forward_hook(
                                 lambda module, args, out: dtypes.append(out[0].dtype)))
    assert changed and _finite_history(result.history)
    assert result.training_numbers()["amp"] is True
    assert torch.bfloat16 in dtypes  # the training steps' head ran in bf16
    assert torch.float32 in dtypes  # validation stays fp32


# the first compile builds C++ kernels: ~3 min on 2 busy cores (~20 s once inductor's disk cache is warm)
@pytest.mark.slow
@HEADS
def test_compile_trains_a_compiled_forward_and_is_recorded(tmp_path: Path, head: str) -> None:
    # the earlier heads' compiles of the same forward count towards dynamo's recompile limit,
    # past which it runs the forward eagerly: each head starts from an empty dynamo cache
    torch._dynamo.reset()
    compiling = []
    result, changed = _train(tmp_path, "train.compile=true", head=head,
                             watch=lambda model: _scoring_head(model).register_forward_hook(
                                 lambda module, args, out: compiling.append(torch.compiler.is_compiling())))
    assert changed and _finite_history(result.history)
    assert result.training_numbers()["compile"] is True
    assert True in compiling  # torch.compile traced the model's forward


def test_optimizer_is_fused_adamw_on_cpu_with_the_graph_encoder_at_its_own_rate() -> None:
    from kgnet.data.cards import load_card
    from kgnet.engine.trainer import make_optimizer
    from kgnet.kg.build import build_class_graph
    from kgnet.models import create_model

    config = load_config(None, ("train.lr=0.01", "train.weight_decay=0.1", "graph_encoder.lr_scale=0.5",
                                "model.embed_dim=16", "model.backbone=test_vit"))
    card = load_card("fashion_mnist")
    graph = build_class_graph(card.ontology, card.classes, wnids=card.wnids, hops=3)
    for variant, encoder_lr in (("kgnet", None), ("kgnet-composed", 0.005)):
        model = create_model(config, graph, variant=variant, in_chans=1, image_size=28)
        optimizer = make_optimizer(model, config.train, torch.device("cpu"))
        assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["fused"] is True
        assert optimizer.defaults["lr"] == 0.01 and optimizer.defaults["weight_decay"] == 0.1
        rest, encoder = optimizer.param_groups
        assert rest["lr"] == 0.01 and len(rest["params"]) + len(encoder["params"]) == len(list(model.parameters()))
        assert (encoder["lr"] if encoder["params"] else None) == encoder_lr


def test_totals_keep_the_first_non_finite_loss_on_the_device() -> None:
    from kgnet.engine.trainer import EpochTotals

    totals = EpochTotals(torch.device("cpu"))
    logits, targets = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]]), torch.tensor([0, 0, 0])
    zero = torch.tensor(0.0)
    for loss in (1.0, float("inf"), float("nan"), 2.0):
        totals.add(torch.tensor(loss), torch.tensor(loss), zero, logits, targets)
    read = totals.read()
    assert read["steps"] == 4 and read["images"] == 12 and read["correct"] == 8
    assert read["bad_step"] == 1 and read["bad_loss"] == float("inf")  # the first, not the NaN after it


def test_amp_on_a_device_without_bf16_is_a_config_error(tmp_path: Path, monkeypatch) -> None:
    from kgnet.engine import trainer
    from kgnet.errors import ConfigError

    monkeypatch.setattr(trainer, "supports_bf16_autocast", lambda device: False)
    with pytest.raises(ConfigError, match="train.amp=true.*set train.amp=false"):
        _train(tmp_path, "train.amp=true")
    assert not (tmp_path / "last.pt").exists()


def test_logit_adjustment_follows_the_class_counts() -> None:
    """tau x log(share) per class with images, 0 for a class without; none for equal counts."""
    from kgnet.engine.losses import logit_adjustment

    labels = torch.tensor([0] * 8 + [1] * 2 + [3] * 2)
    adjustment = logit_adjustment(labels, 4, tau=1.0)
    torch.testing.assert_close(adjustment, torch.tensor([8 / 12, 2 / 12, 1.0, 2 / 12]).log() * torch.tensor(
        [1.0, 1.0, 0.0, 1.0]))
    assert logit_adjustment(torch.tensor([0, 0, 1, 1, 3, 3]), 4, tau=1.0) is None
    assert logit_adjustment(labels, 4, tau=0.0) is None


def test_the_step_warning_states_the_steps_the_trainer_runs(tmp_path: Path, caplog) -> None:
    """Issue 37: with `train.min_steps=100` the demo's 50 images were warned to take 68 steps and
    trained 102. The warning and the trainer now read one `StepPlan`: no warning there, and where
    one is given its count is the number of optimiser steps the scheduler took."""
    from kgnet.config import TrainConfig
    from kgnet.engine.trainer import short_training_warning, step_plan

    demo = step_plan(50, TrainConfig(batch_size=25, epochs=3, min_steps=100))
    assert (demo.passes, demo.total_steps) == (17, 102) and short_training_warning(demo) is None
    # the tiny run below: 20 images, batch 8, 2 epochs, min_steps 0 -> 2 steps x 2 epochs
    plan = step_plan(20, TrainConfig(batch_size=8, epochs=2, min_steps=0))
    assert "training takes only 4 optimiser steps (2 epochs x 2 batches of 8" in short_training_warning(plan)
    _train(tmp_path, head="concept")
    state = torch.load(tmp_path / "last.pt", weights_only=False)
    assert state["scheduler"]["last_epoch"] == plan.total_steps


def test_each_epoch_scores_a_fixed_stratified_sample_of_validation(tmp_path: Path) -> None:
    """`train.val_images` bounds what each epoch scores (the whole split cost more than the demo's
    training); the sample keeps every class in proportion and is the same every epoch."""
    import numpy as np

    from kgnet.data.builder import build_datasets
    from kgnet.engine.trainer import epoch_validation

    config = load_config(None, ("data.samples_per_class=2", "data.val_fraction=0.1"))
    val = build_datasets(config.data, seed=0, augment=False).val
    sample = epoch_validation(val, 1000, seed=0)
    counts = np.bincount(sample.labels.numpy(), minlength=10)
    assert len(sample) == 1000 and counts.tolist() == [100] * 10
    assert torch.equal(epoch_validation(val, 1000, seed=0).images, sample.images)
    assert epoch_validation(val, None, seed=0) is val and epoch_validation(val, 10**6, seed=0) is val
    result, _ = _train(tmp_path, "train.val_images=30", "data.val_fraction=0.1", head="concept")
    assert [row["val_images"] for row in result.history] == [30, 30]
