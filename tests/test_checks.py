"""`kgnet.checks`: the input checks every command runs first, on real files, folders and checkpoints."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from kgnet import checks
from kgnet.errors import KgnetError

AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def test_input_file_accepts_a_file_and_names_every_problem(tmp_path: Path) -> None:
    good = tmp_path / "a.ttl"
    good.write_text("x")
    assert checks.input_file(good) == good
    with pytest.raises(KgnetError, match=r"^--class-map .*nothere\.yaml: no such file$"):
        checks.input_file(tmp_path / "nothere.yaml", "--class-map")
    with pytest.raises(KgnetError, match=r"no such file \(the folder .*missing does not exist either\)"):
        checks.input_file(tmp_path / "missing" / "a.ttl")
    with pytest.raises(KgnetError, match="is a folder, not a file"):
        checks.input_file(tmp_path)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(KgnetError, match="not a regular file"):
        checks.input_file(fifo)


@pytest.mark.skipif(AS_ROOT, reason="root reads files whatever their permissions")
def test_input_file_unreadable(tmp_path: Path) -> None:
    locked = tmp_path / "locked.ttl"
    locked.write_text("x")
    locked.chmod(0)
    with pytest.raises(KgnetError, match="permission denied"):
        checks.input_file(locked)


def test_output_folder(tmp_path: Path) -> None:
    assert checks.output_folder(tmp_path / "new" / "run") == tmp_path / "new" / "run"
    assert not (tmp_path / "new").exists()  # checked, not created
    empty = tmp_path / "empty"
    empty.mkdir()
    assert checks.output_folder(empty) == empty
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    with pytest.raises(KgnetError, match="^--out .*full: the folder is not empty"):
        checks.output_folder(full, "--out")
    assert checks.output_folder(full, must_be_empty=False) == full
    file = tmp_path / "file.txt"
    file.write_text("x")
    with pytest.raises(KgnetError, match="file.txt: is a file, not a folder"):
        checks.output_folder(file)
    with pytest.raises(KgnetError, match=r"file.txt is not a folder, so nothing can be created inside it"):
        checks.output_folder(file / "sub" / "run")


def test_output_file(tmp_path: Path) -> None:
    assert checks.output_file(tmp_path / "a" / "b.ttl") == tmp_path / "a" / "b.ttl"
    assert not (tmp_path / "a").exists()
    existing = tmp_path / "old.ttl"
    existing.write_text("x")
    assert checks.output_file(existing) == existing  # replaced atomically by the writer
    with pytest.raises(KgnetError, match="-o .*: is a folder"):
        checks.output_file(tmp_path, "-o")
    with pytest.raises(KgnetError, match="old.ttl is not a folder"):
        checks.output_file(existing / "x.ttl")


@pytest.mark.skipif(AS_ROOT, reason="root writes anywhere")
def test_output_in_a_read_only_folder(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(KgnetError, match="not writable"):
            checks.output_folder(locked / "run")
    finally:
        locked.chmod(0o700)


def test_available_device() -> None:
    checks.available_device("cpu")
    checks.available_device("auto")
    with pytest.raises(KgnetError, match="^train.device gpu0: not a torch device"):
        checks.available_device("gpu0", "train.device")
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        checks.available_device("cuda")
        with pytest.raises(KgnetError, match=f"has {count} CUDA GPU"):
            checks.available_device(f"cuda:{count}")
    else:
        with pytest.raises(KgnetError, match="^train.device cuda: this machine has no usable CUDA GPU; use cpu"):
            checks.available_device("cuda", "train.device")
        with pytest.raises(KgnetError, match="no usable CUDA GPU"):
            checks.available_device("cuda:1")


def test_readable_checkpoint_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_file({"w": torch.randn(64, 64), "b": torch.zeros(64)}, str(path))
    assert checks.readable_checkpoint(path) == path
    data = path.read_bytes()
    for cut in (len(data) - 1, len(data) // 2, 4, 0):
        path.write_bytes(data[:cut])
        with pytest.raises(KgnetError, match="model.safetensors: not a readable safetensors file.*damaged or truncated"):
            checks.readable_checkpoint(path)


class _RunsCode:
    def __reduce__(self):
        return (print, ("this ran",))


def test_readable_checkpoint_torch(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    torch.save({"model": {"w": torch.randn(8, 8)}, "epoch": 3, "history": [0.5, 0.4]}, path)
    assert checks.readable_checkpoint(path, "--resume") == path
    data = path.read_bytes()
    cases = {
        "truncated": data[: len(data) // 2],
        "random bytes": os.urandom(4096),
        "empty": b"",
        "a bare pickle": pickle.dumps({"epoch": 3}),
    }
    for what, payload in cases.items():
        path.write_bytes(payload)
        with pytest.raises(KgnetError, match="damaged or truncated") as err:
            checks.readable_checkpoint(path, "--resume")
        assert "weights_only" not in str(err.value), what
    torch.save({"model": _RunsCode()}, path)  # a zip archive whose pickle would run code
    with pytest.raises(KgnetError, match="does not unpickle") as err:
        checks.readable_checkpoint(path)
    assert "weights_only" not in str(err.value)
