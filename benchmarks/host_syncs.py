"""Counting host syncs on any device, including the CPU where CUDA's sync debug mode does not exist.

A host sync is the host waiting for a value the device computed: on a GPU it stalls the launch
queue. On the CPU nothing stalls, but the same code would stall on a GPU, so the calls that
would sync are counted where they happen, at two levels:

- ATen ops (a `TorchDispatchMode`, which sees every op the Python code dispatches, also those a
  composite op such as `bool(t)` or `x[mask]` decomposes into): `_local_scalar_dense` (what
  `.item()`, `bool()`, `int()`, `float()` and `if tensor:` run), `nonzero`, `masked_select`,
  the `unique` family and `bincount` (their output size depends on the data),
  `repeat_interleave` without `output_size`, and indexing with a boolean mask (`index` /
  `index_put_` with a bool index, which runs `nonzero` internally);
- Python methods that read tensor memory without dispatching an op on the CPU (a
  `TorchFunctionMode`): `.tolist()`, `.numpy()`, `.cpu()` and `__array__`. (`.to(device)` is
  not counted: on a CPU run it cannot be told apart from moving a batch to the training device.)

On the CPU every tensor is a host tensor, so each call is attributed to the Python line that
made it, and two kinds are set apart as host-side by design rather than counted: calls made in
`torch/optim/` (AdamW keeps its step counters on the CPU unless `capturable` or `fused`, so
its `.item()`s never wait for a GPU) and in the data pipeline (`torch/utils/data/`,
`kgnet/data/`: batches are built on the host and moved to the device afterwards).

This is the CPU counterpart of `torch.cuda.set_sync_debug_mode("warn")`, and slightly stricter:
it also counts `.cpu()` of a tensor that already lives on the CPU, which costs nothing here but
is a device-to-host copy on a GPU. What it cannot see: syncs inside C++ kernels of ops not
listed (none of the ops a kgnet step uses) and `torch.cuda.synchronize()` itself.

    with HostSyncCounter() as syncs:
        train_step()
    syncs.count, syncs.sites  # 2, {'aten._local_scalar_dense at kgnet/engine/trainer.py:184': 1, ...}
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

#: ATen ops (overload packets) whose result size or value the host must read.
SYNCING_OPS = frozenset({
    "aten._local_scalar_dense", "aten.nonzero", "aten.masked_select", "aten._unique", "aten._unique2",
    "aten.unique_consecutive", "aten.unique_dim", "aten.unique_dim_consecutive", "aten.bincount",
})
#: Tensor methods that read memory on the host without dispatching on the CPU.
HOST_READS = frozenset({"tolist", "numpy", "cpu", "__array__"})


_TORCH = str(Path(torch.__file__).parent) + "/"
_HOST_SIDE = {"optimizer": ("torch/optim/",), "data loading": ("torch/utils/data/", "kgnet/data/")}
#: Frames of the counting itself (the modes' wrappers), skipped to find the caller.
_MACHINERY = (__file__, _TORCH + "_dynamo/", _TORCH + "_compile.py", _TORCH + "overrides.py",
              _TORCH + "utils/_python_dispatch.py")


def _site() -> tuple[str | None, str]:
    """(host-side kind or None, "path:line" of the first caller outside torch) of the current call."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename.startswith(_MACHINERY):
        frame = frame.f_back
    kind = None
    if frame is not None:
        name = frame.f_code.co_filename.replace("\\", "/")
        kind = next((k for k, parts in _HOST_SIDE.items() if any(p in name for p in parts)), None)
    while frame is not None and frame.f_code.co_filename.startswith((_TORCH, __file__)):
        frame = frame.f_back
    if frame is None:
        return kind, "?"
    parts = Path(frame.f_code.co_filename).parts
    roots = [i for i, part in enumerate(parts) if part in ("kgnet", "benchmarks", "tests")]
    path = "/".join(parts[roots[-1]:] if roots else parts[-1:])  # repository-relative where possible
    return kind, f"{path}:{frame.f_lineno}"


def _bool_index(indices) -> bool:
    return any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8) for i in indices or ())


class _DispatchSyncs(TorchDispatchMode):
    def __init__(self, record) -> None:
        super().__init__()
        self.record = record

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = str(func.overloadpacket)
        if name in SYNCING_OPS:
            self.record(name)
        elif name == "aten.repeat_interleave" and kwargs.get("output_size") is None and len(args) < 4:
            self.record(name)
        elif name in ("aten.index", "aten.index_put", "aten.index_put_") and _bool_index(args[1]):
            self.record(f"{name} (boolean mask)")
        return func(*args, **kwargs)


class _FunctionSyncs(TorchFunctionMode):
    def __init__(self, record) -> None:
        super().__init__()
        self.record = record

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in HOST_READS:
            self.record(f"Tensor.{name}")
        return func(*args, **kwargs)


class HostSyncCounter:
    """Context manager counting the calls that would sync the host (see the module docstring).

    Attributes:
        calls: Device syncs by what was called (`aten._local_scalar_dense`, `Tensor.tolist`, ...).
        sites: Device syncs by call and the line that made it ("... at kgnet/engine/trainer.py:184").
        host_side: Calls on host tensors by design, by kind (`optimizer`, `data loading`); not counted.
    """

    def __init__(self) -> None:
        self.calls: Counter = Counter()
        self.sites: Counter = Counter()
        self.host_side: Counter = Counter()
        self._modes = (_FunctionSyncs(self._record), _DispatchSyncs(self._record))

    def _record(self, name: str) -> None:
        kind, site = _site()
        if kind is not None:
            self.host_side[kind] += 1
        else:
            self.calls[name] += 1
            self.sites[f"{name} at {site}"] += 1

    @property
    def count(self) -> int:
        """Device syncs counted so far."""
        return sum(self.calls.values())

    def __enter__(self) -> "HostSyncCounter":
        for mode in self._modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for mode in reversed(self._modes):
            mode.__exit__(*exc)
