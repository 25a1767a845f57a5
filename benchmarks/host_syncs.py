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
  `TorchFunctionMode`): `.tolist()`, `.numpy()`, `.cpu()`, `.to("cpu")` and `__array__`.

This is the CPU counterpart of `torch.cuda.set_sync_debug_mode("warn")`, and slightly stricter:
it also counts `.cpu()` of a tensor that already lives on the CPU, which costs nothing here but
is a device-to-host copy on a GPU. What it cannot see: syncs inside C++ kernels of ops not
listed (none of the ops a kgnet step uses) and `torch.cuda.synchronize()` itself.

    with HostSyncCounter() as syncs:
        train_step()
    syncs.count, syncs.calls  # 3, {'aten._local_scalar_dense': 2, 'Tensor.tolist': 1}
"""

from __future__ import annotations

from collections import Counter

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


def _bool_index(indices) -> bool:
    return any(isinstance(i, torch.Tensor) and i.dtype in (torch.bool, torch.uint8) for i in indices or ())


class _DispatchSyncs(TorchDispatchMode):
    def __init__(self, calls: Counter) -> None:
        super().__init__()
        self.calls = calls

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = str(func.overloadpacket)
        if name in SYNCING_OPS:
            self.calls[name] += 1
        elif name == "aten.repeat_interleave" and kwargs.get("output_size") is None and len(args) < 4:
            self.calls[name] += 1
        elif name in ("aten.index", "aten.index_put", "aten.index_put_") and _bool_index(args[1]):
            self.calls[f"{name} (boolean mask)"] += 1
        return func(*args, **kwargs)


class _FunctionSyncs(TorchFunctionMode):
    def __init__(self, calls: Counter) -> None:
        super().__init__()
        self.calls = calls

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in HOST_READS or (name == "to" and _to_cpu(args[1:], kwargs)):
            self.calls[f"Tensor.{name}"] += 1
        return func(*args, **kwargs)


def _to_cpu(args, kwargs) -> bool:
    device = kwargs.get("device", args[0] if args else None)
    return isinstance(device, (str, torch.device)) and torch.device(device).type == "cpu"


class HostSyncCounter:
    """Context manager counting the calls that sync the host (see the module docstring).

    Attributes:
        calls: What was called, and how often (`aten._local_scalar_dense`, `Tensor.tolist`, ...).
    """

    def __init__(self) -> None:
        self.calls: Counter = Counter()
        self._modes = (_FunctionSyncs(self.calls), _DispatchSyncs(self.calls))

    @property
    def count(self) -> int:
        """Host syncs counted so far."""
        return sum(self.calls.values())

    def __enter__(self) -> "HostSyncCounter":
        for mode in self._modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for mode in reversed(self._modes):
            mode.__exit__(*exc)
