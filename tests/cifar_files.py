"""CIFAR-10 and CIFAR-100 in their official on-disk format (Python 2 pickles), written small by tests:
the data sets cannot be fetched here, so their readers are tested on files of exactly that format."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from kgnet.data.cards import load_card


def cifar_rows(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 3072), dtype=np.uint8)


def _py2(obj: object) -> bytes:
    """Pickle opcodes as Python 2's cPickle (protocol 2) wrote the official files: str is BINSTRING."""
    if isinstance(obj, bytes):
        return (b"U" + bytes([len(obj)]) if len(obj) < 256 else b"T" + struct.pack("<i", len(obj))) + obj
    if isinstance(obj, int):
        return b"J" + struct.pack("<i", obj)
    if isinstance(obj, list):
        return b"](" + b"".join(_py2(item) for item in obj) + b"e"
    if isinstance(obj, dict):
        return b"}(" + b"".join(_py2(k) + _py2(v) for k, v in obj.items()) + b"u"
    if isinstance(obj, np.ndarray) and obj.dtype == np.uint8 and obj.ndim == 2:
        # numpy 1.x under Python 2: _reconstruct(ndarray, (0,), 'b'), then
        # __setstate__((1, shape, dtype('u1', 0, 1) with state (3, '|', ...), False, raw bytes))
        dtype = (b"cnumpy\ndtype\n" + _py2(b"u1") + b"K\x00K\x01\x87R"
                 + b"(K\x03" + _py2(b"|") + b"NNN" + _py2(-1) + _py2(-1) + b"K\x00tb")
        shape = _py2(obj.shape[0]) + _py2(obj.shape[1]) + b"\x86"
        return (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + _py2(b"b") + b"\x87R"
                + b"(K\x01" + shape + dtype + b"\x89" + _py2(obj.tobytes()) + b"tb")
    raise TypeError(type(obj))


def dump_cifar(path: Path, obj: dict) -> None:
    """Write `obj` as the official CIFAR files are: a Python 2 pickle whose strings load as bytes."""
    path.write_bytes(b"\x80\x02" + _py2(obj) + b".")


def write_cifar10(root: Path, per_batch: int = 6, n_test: int = 10) -> Path:
    """cifar-10-batches-py with data_batch_1..5, test_batch and batches.meta, as the archive has them."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = load_card("cifar10").classes
    dump_cifar(folder / "batches.meta", {b"num_cases_per_batch": per_batch,
                                    b"label_names": [n.encode() for n in names], b"num_vis": 3072})
    for i in range(1, 6):
        labels = [(j + i) % 10 for j in range(per_batch)]
        dump_cifar(folder / f"data_batch_{i}", {
            b"batch_label": f"training batch {i} of 5".encode(), b"labels": labels,
            b"data": cifar_rows(per_batch, i),
            b"filenames": [f"img_{i}_{j}.png".encode() for j in range(per_batch)]})
    data = cifar_rows(n_test, 99)
    data[0] = 0
    data[0, 1 * 1024 + 3 * 32 + 7] = 200  # green channel, row 3, column 7
    data[0, 2 * 1024 + 31 * 32 + 0] = 90  # blue channel, row 31, column 0
    dump_cifar(folder / "test_batch", {b"batch_label": b"testing batch 1 of 1",
                                  b"labels": [j % 10 for j in range(n_test)], b"data": data,
                                  b"filenames": [f"t_{j}.png".encode() for j in range(n_test)]})
    return folder


def write_cifar100(root: Path, n_train: int = 200, n_test: int = 100) -> Path:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    names = load_card("cifar100").classes
    dump_cifar(folder / "meta", {b"fine_label_names": [n.encode() for n in names],
                            b"coarse_label_names": [f"super_{i}".encode() for i in range(20)]})
    for split, n in (("train", n_train), ("test", n_test)):
        fine = [j % 100 for j in range(n)]
        dump_cifar(folder / split, {b"filenames": [f"{split}_{j}.png".encode() for j in range(n)],
                               b"batch_label": f"{split}ing batch 1 of 1".encode(), b"fine_labels": fine,
                               b"coarse_labels": [f // 5 for f in fine], b"data": cifar_rows(n, len(split))})
    return folder
