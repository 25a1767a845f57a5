"""The CPU host-sync counter: what it counts, where it says the call was, what it sets apart."""

from __future__ import annotations

import pytest
import torch

from benchmarks.host_syncs import HostSyncCounter

pytestmark = pytest.mark.usefixtures("one_thread")


def test_counts_each_kind_of_host_read_at_its_line() -> None:
    x = torch.arange(6.0)
    with HostSyncCounter() as syncs:
        x.sum().item()
        if (x > 2).any():
            float(x[0])
        x[x > 2], x.nonzero(), torch.unique(x), x.tolist(), x.cpu()
    assert syncs.calls == {"aten._local_scalar_dense": 3, "aten.index (boolean mask)": 1, "aten.nonzero": 1,
                           "aten._unique2": 1, "Tensor.tolist": 1, "Tensor.cpu": 1}
    assert syncs.count == 8
    assert all(site.split(" at ")[1].startswith("tests/engine/test_host_syncs.py:") for site in syncs.sites)


def test_sync_free_code_counts_nothing_and_optimizer_scalars_are_host_side() -> None:
    layer = torch.nn.Linear(4, 4)
    optimizer = torch.optim.AdamW(layer.parameters())
    index = torch.tensor([0, 2, 2])
    with HostSyncCounter() as syncs:
        x = torch.randn(3, 4)
        out = torch.zeros(3, 4).index_add(0, index, layer(x).index_select(0, index))
        out.masked_fill(x > 0, 0.0).square().mean().backward()
        optimizer.step()  # AdamW reads its step counters, which live on the CPU by design
    assert syncs.count == 0, syncs.sites
    assert syncs.host_side["optimizer"] > 0


def test_kgnet_model_step_never_syncs_the_host() -> None:
    """Forward, the stage-2 losses and backward of the default kgnet model: no host sync (the
    training loop's own bookkeeping is counted by benchmarks/model_cost.py)."""
    from benchmarks.model_cost import step_syncs
    from kgnet.config import Config
    from kgnet.data.cards import load_card
    from kgnet.kg.build import build_class_graph
    from kgnet.models import create_model

    card = load_card("fashion_mnist")
    graph = build_class_graph(card.ontology, card.classes, wnids=card.wnids, hops=2)
    model = create_model(Config(), graph, in_chans=1, image_size=28)
    optimizer = torch.optim.AdamW(model.parameters())
    images, labels = torch.randn(4, 1, 28, 28), torch.tensor([0, 3, 5, 9])
    syncs = step_syncs(model, optimizer, images, labels)
    assert syncs["forward_loss_backward"] == 0 and syncs["optimizer_step"] == 0, syncs["sites"]


@pytest.mark.parametrize("variant", ["baseline", "kgnet", "kgnet-prototype"])
def test_trainer_step_never_syncs_the_host(variant: str) -> None:
    """The trainer's own step (`TrainingStep`: forward, both stages' losses, backward, AdamW,
    the schedule, the device-side totals and divergence flag) on a tiny batch: no host sync.
    Reading the totals (every `POSTFIX_EVERY` steps and at the epoch's end) is the one read."""
    from kgnet.config import load_config
    from kgnet.data.cards import load_card
    from kgnet.engine.trainer import EpochTotals, TrainingStep, make_optimizer
    from kgnet.kg.build import build_class_graph
    from kgnet.models import create_model

    config = load_config(None, ("model.embed_dim=32",))
    card = load_card("fashion_mnist")
    graph = build_class_graph(card.ontology, card.classes, wnids=card.wnids, hops=3)
    model = create_model(config, graph, variant=variant, num_classes=10, in_chans=1, image_size=28)
    optimizer = make_optimizer(model, config.train, torch.device("cpu"))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (step + 1))
    seen = torch.ones(10, dtype=torch.bool)
    seen[[5, 8]] = False  # two held-out classes, masked out of the loss as in a zero-shot run
    step = TrainingStep(model, model.head, optimizer, scheduler, config.train, seen=seen)
    totals = EpochTotals(torch.device("cpu"))
    images, labels = torch.randn(4, 1, 28, 28), torch.tensor([0, 3, 6, 9])
    step(images, labels, totals, 0)  # AdamW creates its state on the first step
    with HostSyncCounter() as syncs:
        step(images, labels, totals, 0)  # the prototype head's alignment epoch; the others' first
        step(images, labels, totals, model.head.align_epochs)  # after it: cross-entropy (and alignment)
    assert syncs.count == 0, syncs.sites
    read = totals.read()
    assert read["steps"] == 3 and read["images"] == 12 and read["bad_step"] == -1
