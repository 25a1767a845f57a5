"""Checks every command runs on its inputs before it creates anything.

A command validates its files, folders, device and checkpoints here, first, so a mistake
costs the user one clear message (exit 2) and leaves nothing half-made behind, and the next
new flag gets the same checks by calling the same function. Each check raises `KgnetError`
naming the flag and the path and saying what to do; `what` is the flag or setting the value
came from (e.g. "--out", "train.device"), printed before it.
"""

from __future__ import annotations

import functools
import os
import pickle
import zipfile
from pathlib import Path

from safetensors import SafetensorError, safe_open

from kgnet.errors import KgnetError


def _named(what: str, value: object) -> str:
    return f"{what} {value}" if what else str(value)


def _unusable(function):
    """A path check that names a path the system cannot use at all (a NUL byte, a component too
    long, a loop of links) instead of tracing back from inside the file system call."""

    @functools.wraps(function)
    def checked(path, what: str = "", *args, **kwargs):
        if "\0" in os.fspath(path):
            raise KgnetError(f"{_named(what, repr(os.fspath(path)))}: the path holds a NUL byte, which no file name "
                             "can; give another")
        try:
            return function(path, what, *args, **kwargs)
        except KgnetError:
            raise
        except (OSError, ValueError) as err:
            reason = getattr(err, "strerror", None) or str(err)
            raise KgnetError(f"{_named(what, path)}: not a path this system can use ({reason}); give another") \
                from None

    return checked


@_unusable
def input_file(path: str | os.PathLike, what: str = "") -> Path:
    """An existing regular file this process can read.

    Args:
        path: the file.
        what: the flag or setting it came from, for the message.

    Raises:
        KgnetError: missing, a folder, not a regular file (a pipe, a device), or unreadable.
    """
    path = Path(path).expanduser()
    name = _named(what, path)
    if not path.exists():
        missing_folder = next((p for p in reversed(path.parents) if not p.exists()), None)
        hint = f" (the folder {missing_folder} does not exist either)" if missing_folder else ""
        raise KgnetError(f"{name}: no such file{hint}")
    if path.is_dir():
        raise KgnetError(f"{name}: is a folder, not a file; give the file inside it")
    if not path.is_file():
        raise KgnetError(f"{name}: not a regular file (a pipe or device?); save it to a file first")
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        raise KgnetError(f"{name}: permission denied; make it readable (chmod u+r) or copy it") from None
    return path


@_unusable
def run_folder(path: str | os.PathLike, what: str = "--run") -> Path:
    """A run folder written by `python -m kgnet.train` (a folder holding its config.yaml).

    Raises:
        KgnetError: missing, a file, or a folder without config.yaml.
    """
    path = Path(path).expanduser()
    name = _named(what, path)
    if not path.exists():
        raise KgnetError(f"{name}: no such folder; give a run folder written by python -m kgnet.train")
    if not path.is_dir():
        raise KgnetError(f"{name}: is a file, not a run folder; give the folder python -m kgnet.train wrote")
    if not (path / "config.yaml").is_file():
        raise KgnetError(f"{name}: not a kgnet run folder (no config.yaml there); give a folder written by "
                         "python -m kgnet.train")
    return path


def _creatable(path: Path, name: str) -> None:
    """Every existing folder above `path` is a folder, and the nearest one is writable."""
    for parent in path.parents:
        if not parent.exists() and not parent.is_symlink():
            continue
        if not parent.is_dir():
            raise KgnetError(f"{name}: {parent} is not a folder, so nothing can be created inside it; choose another path")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise KgnetError(f"{name}: cannot create it, {parent} is not writable; choose another path")
        return


@_unusable
def output_folder(path: str | os.PathLike, what: str = "", *, must_be_empty: bool = True) -> Path:
    """A folder a command may create and fill, checked without creating it.

    Args:
        path: the folder.
        what: the flag or setting it came from, for the message.
        must_be_empty: refuse an existing folder that holds anything (a run folder must not
            mix two runs); False accepts one that a command adds to.

    Raises:
        KgnetError: an existing file, inside a file, not empty, or in a folder not writable.
    """
    path = Path(path).expanduser()
    name = _named(what, path)
    if path.exists() or path.is_symlink():
        if not path.is_dir():
            raise KgnetError(f"{name}: is a file, not a folder; give a folder (it is created if missing)")
        if must_be_empty and any(path.iterdir()):
            raise KgnetError(f"{name}: the folder is not empty; pick a new one")
        if not os.access(path, os.W_OK | os.X_OK):
            raise KgnetError(f"{name}: the folder is not writable; choose another path")
        return path
    _creatable(path, name)
    return path


@_unusable
def output_file(path: str | os.PathLike, what: str = "") -> Path:
    """A file a command may write (replacing an existing file), checked without creating anything.

    Raises:
        KgnetError: a folder, not a regular file, inside a file, or in a folder not writable.
    """
    path = Path(path).expanduser()
    name = _named(what, path)
    if path.is_dir():
        raise KgnetError(f"{name}: is a folder; give the name of a file (new or to replace)")
    if path.exists() and not path.is_file():
        raise KgnetError(f"{name}: not a regular file; give a file name")
    _creatable(path, name)
    return path


def available_device(name: str, what: str = "") -> None:
    """Check that the torch device `name` exists on this machine ("auto" always does).

    Raises:
        KgnetError: not a device name, or a GPU (CUDA, MPS) this machine does not have.
    """
    # deferred: every CLI checks its arguments with this module before torch loads (~4 s)
    import torch

    if name == "auto":
        return
    label = _named(what, name)
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise KgnetError(f"{label}: not a torch device; use cpu, cuda, cuda:N, mps or auto") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise KgnetError(f"{label}: this machine has no usable CUDA GPU; use cpu (or auto)")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise KgnetError(f"{label}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise KgnetError(f"{label}: Apple MPS is not available on this machine; use cpu (or auto)")
    elif device.type != "cpu":
        raise KgnetError(f"{label}: kgnet runs on cpu, cuda or mps, not {device.type}")


def readable_checkpoint(path: str | os.PathLike, what: str = "",
                        remedy: str = "restore it from a copy or re-create it") -> Path:
    """A `.safetensors` file or a `torch.save` file that loads without unpickling arbitrary objects.

    safetensors files are checked by reading their header, which covers truncation; torch
    files are loaded with `weights_only=True` (memory-mapped, so large ones cost little). The
    message never repeats torch's advice to load with `weights_only=False`: that runs
    whatever code the file holds.

    Args:
        path: the checkpoint.
        what: the flag or setting it came from, for the message.
        remedy: what the user should do about a damaged file.

    Raises:
        KgnetError: missing, truncated, damaged, or holding objects other than tensors and
            plain containers.
    """
    path = input_file(path, what)
    name = _named(what, path)
    damaged = f"it is damaged or truncated (an interrupted copy or write?); {remedy}"
    if path.suffix == ".safetensors":
        try:
            with safe_open(str(path), framework="pt") as handle:
                handle.keys()
        except (SafetensorError, OSError) as err:
            detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise KgnetError(f"{name}: not a readable safetensors file ({detail}); {damaged}") from None
        return path
    # deferred: every CLI checks its arguments with this module before torch loads (~4 s)
    import torch

    if not zipfile.is_zipfile(path):
        raise KgnetError(f"{name}: not a PyTorch checkpoint (torch.save writes a zip archive); {damaged}")
    try:
        torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError:
        raise KgnetError(
            f"{name}: holds objects other than tensors and plain containers, which kgnet does not "
            f"unpickle (they could run code); it was not written by kgnet, or it is damaged; {remedy}"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as err:
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if "weights_only" in detail:
            detail = type(err).__name__
        raise KgnetError(f"{name}: not a readable PyTorch checkpoint ({detail[:160]}); {damaged}") from None
    return path
