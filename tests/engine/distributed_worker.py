"""One torchrun process of `tests/test_distributed.py`: train runs with `kgnet.train.run`, and
record every collective kgnet calls with the devices of its tensors.

    python -m torch.distributed.run --standalone --nproc_per_node=2 tests/engine/distributed_worker.py OUT SPEC.json

SPEC.json maps a run name to its config overrides; run NAME goes to OUT/NAME. Each process
writes OUT/collectives-<rank>.json: the process's device, per collective call its name and the
device of every tensor it was handed, and per DistributedDataParallel the trainer built its run,
the class of the model's head, whether the model has a graph encoder and whether DDP looks for
unused parameters.
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
    from kgnet.engine import trainer
    from kgnet.engine.distributed import resolve_device
    from kgnet.train import run

    calls: list[dict] = []
    for name in ("all_reduce", "all_gather", "broadcast"):
        setattr(dist, name, _recorded(name, calls, getattr(dist, name)))
    wrapped: list[dict] = []
    current: list[str] = []

    class RecordedDDP(trainer.DistributedDataParallel):
        def __init__(self, module, *args, **kwargs):
            super().__init__(module, *args, **kwargs)
            wrapped.append({"run": current[-1], "head": type(module.head).__name__,
                            "graph_encoder": type(module.graph_encoder).__name__,
                            "find_unused_parameters": bool(self.find_unused_parameters)})

    trainer.DistributedDataParallel = RecordedDDP
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
            current.append(name)
            run(config, Path(out) / name, progress=False)
    finally:
        dist.destroy_process_group()
    rank = os.environ["RANK"]
    Path(out, f"collectives-{rank}.json").write_text(json.dumps({"devices": sorted(map(str, devices)), "calls": calls,
                                                                 "ddp": wrapped}))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
