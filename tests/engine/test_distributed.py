"""Data-parallel training: the collectives take tensors on the process's device, N processes
take the same optimiser steps on the same images as one, and a ConvNeXt and a ViT, baseline,
kgnet and kgnet-composed, trained by two torchrun processes (gloo) end with the weights one
process gets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import REPO, photo_overrides
from kgnet.engine.distributed import DistributedContext, all_reduce_sum, broadcast_buffers, gather_rows, shard
from kgnet.engine.trainer import EpochTotals, epoch_order

META = torch.device("meta")  # a device that is not the CPU, on any machine


def test_epoch_sums_live_on_the_process_device() -> None:
    """Built on the process's device (here the meta device, standing in for a GPU), the epoch
    sums stay there as steps add to them: the all-reduce that nccl does on the GPU gets them."""
    totals = EpochTotals(META)
    logits = torch.empty(4, 10, device=META)
    loss = torch.empty((), device=META)
    totals.add(loss, loss, loss, logits, torch.empty(4, dtype=torch.long, device=META))
    assert totals.sums.device == META and totals.sums.dtype == torch.float64 and totals.sums.shape == (8,)


def test_collectives_refuse_a_tensor_on_another_device() -> None:
    context = DistributedContext(rank=0, world_size=2, device=META)
    for collective in (all_reduce_sum, gather_rows):
        with pytest.raises(RuntimeError, match="a tensor on cpu, but this process computes on meta"):
            collective(torch.zeros(3), context)
    with pytest.raises(RuntimeError, match="broadcast: a tensor on cpu"):
        broadcast_buffers(torch.nn.BatchNorm1d(3), context)


def test_every_process_takes_its_slice_of_the_same_global_batches() -> None:
    one = epoch_order(103, 8, seed=5, context=DistributedContext())
    two = [epoch_order(103, 4, seed=5, context=DistributedContext(rank=r, world_size=2)) for r in range(2)]
    assert len(one) == 96 and [len(o) for o in two] == [48, 48]  # 12 steps, the partial batch dropped
    for step in range(12):
        together = two[0][4 * step:4 * step + 4] + two[1][4 * step:4 * step + 4]
        assert together == one[8 * step:8 * step + 8]
    small = [epoch_order(5, 4, seed=1, context=DistributedContext(rank=r, world_size=2)) for r in range(2)]
    assert sorted(small[0] + small[1]) == list(range(5))  # less than a global batch: shared out
    parts = [shard(10, DistributedContext(rank=r, world_size=3)) for r in range(3)]
    assert [list(p) for p in parts] == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]


BACKBONES = ("test_convnext", "test_vit")
VARIANTS = ("baseline", "kgnet", "kgnet-composed")
#: One process and two draw different dropout masks: the parts these variants have, without dropout.
NO_DROPOUT = ("mlp_head.dropout=0.0", "graph_encoder.dropout=0.0", "infusion.dropout=0.0")


def _log(folder: Path) -> list[dict[str, float]]:
    from kgnet.engine.trainer import read_history

    return read_history(folder / "log.csv")


def test_two_processes_train_convnext_and_vit_as_one_does(photo_root: Path, tmp_path: Path) -> None:
    """Neither backbone has BatchNorm and dropout is off, so two processes, each with half of
    every global batch and gradients averaged by DDP, must end with the weights of one process
    up to float rounding: the same optimiser steps on the same images. Three variants run: the
    baseline, the default kgnet (the concept head alone) and kgnet-composed (R-GCN, infusion,
    concept head) with its node-embedding cache; DDP looks for unused parameters only where
    some exist: ConvNeXt's head norm, which the concept head (it reads the tokens) never uses;
    the ViT's class-token pooling has none."""
    from kgnet.config import load_config
    from kgnet.data.builder import build_datasets
    from kgnet.engine.scoring import predict
    from kgnet.release import load_release
    from kgnet.train import run

    runs = {name: [*photo_overrides(photo_root, name), *NO_DROPOUT, "train.device=cpu", "train.batch_size=8",
                   f"variants=[{','.join(VARIANTS)}]"] for name in BACKBONES}
    for name, overrides in runs.items():
        run(load_config(None, overrides), tmp_path / "one" / name, progress=False)
    spec = tmp_path / "runs.json"
    spec.write_text(json.dumps(runs))
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(REPO / "tests" / "engine" / "distributed_worker.py"), str(tmp_path / "two"), str(spec)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "\r" not in result.stderr  # a redirected log gets lines, not progress-bar refreshes

    test = build_datasets(load_config(None, runs[BACKBONES[0]]).data, augment=False).test
    for name in BACKBONES:
        one, two = tmp_path / "one" / name, tmp_path / "two" / name
        assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())  # rank 0 alone wrote
        for variant in VARIANTS:
            # The same function: logits agree to float rounding. (Weights are compared through what
            # they compute: an attention's key bias has no true gradient, so Adam moves it by the
            # rounding noise of its gradient, differently in each run, without changing any output.)
            a, b = (predict(load_release(run_dir / variant).model, test, device=torch.device("cpu")).logits
                    for run_dir in (one, two))
            assert float((a - b).abs().max()) < 1e-3, (name, variant, float((a - b).abs().max()))
            metrics_one = json.loads((one / "metrics.json").read_text())[variant]
            metrics_two = json.loads((two / "metrics.json").read_text())[variant]
            assert metrics_two["confusion"] == metrics_one["confusion"]
            assert metrics_two["epochs"] == metrics_one["epochs"] == 2
            for row_one, row_two in zip(_log(one / variant), _log(two / variant)):
                assert row_two["train_loss"] == pytest.approx(row_one["train_loss"], rel=1e-5)

    for rank in (0, 1):
        record = json.loads((tmp_path / "two" / f"collectives-{rank}.json").read_text())
        assert record["devices"] == ["cpu"]
        ops = {call["op"] for call in record["calls"]}
        assert ops == {"all_reduce", "all_gather", "broadcast"}  # epoch sums, predictions, buffers
        for call in record["calls"]:
            assert call["devices"] and set(call["devices"]) == {"cpu"}, call
        assert record["ddp"] == [
            {"run": "test_convnext", "head": "MLPHead", "graph_encoder": "NoGraphEncoder", "find_unused_parameters": False},
            {"run": "test_convnext", "head": "ConceptHead", "graph_encoder": "NoGraphEncoder", "find_unused_parameters": True},
            {"run": "test_convnext", "head": "ConceptHead", "graph_encoder": "GraphEncoder", "find_unused_parameters": True},
            {"run": "test_vit", "head": "MLPHead", "graph_encoder": "NoGraphEncoder", "find_unused_parameters": False},
            # every parameter used
            {"run": "test_vit", "head": "ConceptHead", "graph_encoder": "NoGraphEncoder", "find_unused_parameters": False},
            {"run": "test_vit", "head": "ConceptHead", "graph_encoder": "GraphEncoder", "find_unused_parameters": False},
        ]
