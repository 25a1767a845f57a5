"""The GPU benchmark's measurement (benchmarks/gpu_path.py) runs on any device: here on the CPU,
in a gloo process group of one process, so the code a GPU session runs is exercised by CI."""

from __future__ import annotations

import math
import socket

import pytest
import torch
import torch.distributed as dist

from benchmarks.gpu_path import measure_case


@pytest.fixture
def one_process_group(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(port))
    dist.init_process_group("gloo", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_one_case_times_both_models_in_ddp_and_reports_their_ratio(one_process_group):
    result = measure_case(("32 px, batch 4", 3, 32, 4, True), "fp32-eager", "kgnet", steps=1, blocks=2, warmup=1,
                          device=torch.device("cpu"))
    for name in ("baseline", "kgnet"):
        assert len(result[name]["step_seconds"]) == 2
        assert result[name]["images_per_second"] == pytest.approx(4 / result[name]["median_step_seconds"])
        assert math.isfinite(result[name]["mean_loss"])
    assert result["kgnet"]["params"] != result["baseline"]["params"]  # two models, not one timed twice
    ratio = result["kgnet"]["median_step_seconds"] / result["baseline"]["median_step_seconds"]
    assert result["kgnet_over_baseline_step_time"] == pytest.approx(ratio)
    assert result["met"] == (ratio <= 1.15)
