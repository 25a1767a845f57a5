"""One torchrun process of `tests/test_distributed.py`: train runs with `kgnet.train.run`, and
record every collective kgnet calls with the devices of its tensors.

    python -m torch.distributed.run --standalone --nproc_per_node=2 tests/distributed_worker.py OUT SPEC.json

SPEC.json maps a run name to its config overrides; run NAME goes to OUT/NAME. Each process
writes OUT/collectives-<rank>.json: the process's device and, per collective call, its name and
the device of every tensor it was handed.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import torch.distributed as dist


def _recorded(name: str, calls: list[dict], collective):
    @functools.wraps(collective)
    def wrapped(*args, **kwargs):
        tensors = []
        for arg in args:
            tensors += arg if isinstance(arg, list) else [arg] if hasattr(arg, "device") else []
        calls.append({"op": name, "devices": [str(t.device) for t in tensors]})
        return collective(*args, **kwargs)

    return wrapped


def main(out: str, spec: str) -> int:
    from kgnet.config import load_config
    from kgnet.engine.distributed import resolve_device
    from kgnet.train import run

    calls: list[dict] = []
    for name in ("all_reduce", "all_gather", "broadcast"):
        setattr(dist, name, _recorded(name, calls, getattr(dist, name)))
    configs = {name: load_config(None, overrides) for name, overrides in json.loads(Path(spec).read_text()).items()}
    devices = {resolve_device(c.train.device, int(os.environ["LOCAL_RANK"])) for c in configs.values()}
    # One process group for all the runs (each run leaves a group it did not create alone).
    device = next(iter(devices))
    if device.type == "cuda":
        import torch

        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        for name, config in configs.items():
            run(config, Path(out) / name, progress=False)
    finally:
        dist.destroy_process_group()
    rank = os.environ["RANK"]
    Path(out, f"collectives-{rank}.json").write_text(json.dumps({"devices": sorted(map(str, devices)), "calls": calls}))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
