"""CIFAR-10 and CIFAR-100 in their official "python version" on-disk format.

Each batch file is a pickle of a dict whose keys are bytes: ``b"data"`` (uint8 [N, 3072], each
row the 1024 red, then 1024 green, then 1024 blue values of a 32x32 image in row-major order)
and ``b"labels"`` (CIFAR-10) or ``b"fine_labels"`` (CIFAR-100); the meta file holds the label
names. They are unpickled as their authors document (``encoding="bytes"``), but through an
unpickler that only admits the numpy globals an array needs: a pickle can run arbitrary code,
and a data folder is not a place code should come from. Class names are checked against the
dataset card, so label i is the class the card (and its ontology) calls i.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kgnet.data.arrays import ArrayDataset, ImageArrays
from kgnet.data.locate import data_home, find_folder, missing, search_folders
from kgnet.errors import KgnetError

log = logging.getLogger(__name__)

#: Side length and channels of every CIFAR image.
SIZE, CHANNELS = 32, 3


@dataclass(frozen=True)
class CifarLayout:
    """Where one CIFAR variant keeps what, by its official file and key names."""

    name: str
    title: str
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    labels_key: str
    names_key: str
    torchvision_class: str


CIFAR10 = CifarLayout(
    name="cifar10", title="CIFAR-10", folder="cifar-10-batches-py",
    train_files=tuple(f"data_batch_{i}" for i in range(1, 6)), test_files=("test_batch",),
    meta_file="batches.meta", labels_key="labels", names_key="label_names",
    torchvision_class="CIFAR10")
CIFAR100 = CifarLayout(
    name="cifar100", title="CIFAR-100", folder="cifar-100-python",
    train_files=("train",), test_files=("test",),
    meta_file="meta", labels_key="fine_labels", names_key="fine_label_names",
    torchvision_class="CIFAR100")
LAYOUTS = {layout.name: layout for layout in (CIFAR10, CIFAR100)}

# The globals a pickled uint8 array needs, as written by Python 2 (the official files) or 3.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global except those numpy arrays are built from."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of a CIFAR batch")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            module = "numpy._core." + module.removeprefix("numpy.core.")  # numpy >= 2 renamed it
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict[str, Any]:
    """The dict in a CIFAR pickle, keys decoded to str (files re-pickled by Python 3 have str keys)."""
    try:
        with open(path, "rb") as f:
            data = _ArrayUnpickler(f, encoding="bytes").load()
    except OSError as err:
        raise KgnetError(f"{path}: cannot read: {err}") from None
    except Exception as err:  # unpickling fails with many types: EOFError, UnpicklingError, ...
        raise KgnetError(f"{path}: not a CIFAR python batch ({type(err).__name__}: {err}); "
                         "the file is truncated or corrupt, get it again") from None
    if not isinstance(data, dict):
        raise KgnetError(f"{path}: not a CIFAR python batch: holds a {type(data).__name__}, not a dict")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in data.items()}


def _key(path: Path, data: dict[str, Any], key: str) -> Any:
    if key not in data:
        raise KgnetError(f"{path}: no {key!r} entry (has {', '.join(sorted(data))}); "
                         "not a batch of this CIFAR variant")
    return data[key]


def read_cifar_batch(path: str | Path, labels_key: str) -> ImageArrays:
    """Read one CIFAR batch file into uint8 images [N,32,32,3] and int64 labels [N].

    Args:
        path: A batch pickle (``data_batch_1``, ``test_batch``, ``train``, ``test``).
        labels_key: ``"labels"`` (CIFAR-10) or ``"fine_labels"`` (CIFAR-100).

    Raises:
        KgnetError: Not a pickle of the expected dict, pixels not uint8 rows of 3072, or a
            different number of labels than images.
    """
    path = Path(path)
    data = _unpickle(path)
    pixels = _key(path, data, "data")
    labels = np.asarray(_key(path, data, labels_key))
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8 or pixels.ndim != 2 \
            or pixels.shape[1] != CHANNELS * SIZE * SIZE:
        got = (f"{pixels.dtype} {list(pixels.shape)}" if isinstance(pixels, np.ndarray)
               else type(pixels).__name__)
        raise KgnetError(f"{path}: 'data' must be uint8 rows of {CHANNELS * SIZE * SIZE} values, got {got}")
    if labels.ndim != 1 or len(labels) != len(pixels) or not np.issubdtype(labels.dtype, np.integer):
        raise KgnetError(f"{path}: {len(pixels)} images but {labels_key!r} holds "
                         f"{labels.size} {labels.dtype} values; expected one integer label per image")
    # A row is the red plane, then green, then blue (CHW); the conventional layout is HWC.
    images = pixels.reshape(-1, CHANNELS, SIZE, SIZE).transpose(0, 2, 3, 1)
    return ImageArrays(images, labels.astype(np.int64), (path,))


def read_cifar_names(path: str | Path, names_key: str) -> list[str]:
    """The label names in a CIFAR meta file (``batches.meta`` or ``meta``)."""
    path = Path(path)
    names = _key(path, _unpickle(path), names_key)
    return [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names]


def _concat(parts: list[ImageArrays]) -> ImageArrays:
    if len(parts) == 1:
        return parts[0]
    return ImageArrays(np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]),
                       tuple(f for p in parts for f in p.files))


def _check_names(meta: Path, names: list[str], expected: list[str], card_path: Path | None) -> None:
    if names == expected:
        return
    card = f"the card {card_path}" if card_path else "the dataset card"
    if len(names) != len(expected):
        raise KgnetError(f"{meta}: {len(names)} label names, but {card} lists {len(expected)} classes")
    diffs = [f"label {i}: {a!r} (card: {b!r})" for i, (a, b) in enumerate(zip(names, expected)) if a != b]
    shown = "; ".join(diffs[:5]) + (f"; and {len(diffs) - 5} more" if len(diffs) > 5 else "")
    raise KgnetError(f"{meta}: label names differ from {card}: {shown}")


def how_to_get(layout: CifarLayout, target: Path) -> str:
    """How a user gets `layout`'s files into folder `target`, for the missing-data message."""
    return (f"with internet, set `data.download: true` (download=True) to run "
            f"torchvision.datasets.{layout.torchvision_class}(root, download=True) into "
            f"{target}; or unpack the official python-version archive yourself and "
            f"set data.root to the folder holding {layout.folder}/")


def find_cifar(layout: CifarLayout, root: str | Path | None = None) -> Path:
    """The folder holding `layout`'s files (``cifar-10-batches-py`` or ``cifar-100-python``).

    Args:
        layout: `CIFAR10` or `CIFAR100`.
        root: The folder the user named: the batch folder itself or the folder above it.

    Raises:
        DataMissingError: Not found; says how to get it.
    """
    def holds(folder: Path) -> Path | None:
        for candidate in (folder / layout.folder, folder):
            if (candidate / layout.meta_file).is_file():
                return candidate
        return None

    folders = search_folders(layout.name, root)
    found = find_folder(folders, holds)
    if found is None:
        target = Path(root).expanduser() if root is not None else data_home(layout.name)
        raise missing(layout.title, f"{layout.folder}/{layout.meta_file}", folders,
                      how_to_get(layout, target))
    return found


def read_cifar(folder: str | Path, layout: CifarLayout, class_names: list[str],
               card_path: Path | None = None) -> ArrayDataset:
    """Read a CIFAR variant from its batch folder.

    Args:
        folder: ``.../cifar-10-batches-py`` or ``.../cifar-100-python`` (as `find_cifar` returns).
        layout: `CIFAR10` or `CIFAR100`.
        class_names: The card's class names; the meta file must list exactly these, in order.
        card_path: The card file, for the message when names differ.

    Returns:
        uint8 images [N,32,32,3] (a view of the CHW rows), int64 labels, the class names.

    Raises:
        DataMissingError: A batch file is missing.
        KgnetError: A corrupt batch, or label names that differ from the card's.
    """
    folder = Path(folder)
    meta = folder / layout.meta_file
    names = read_cifar_names(meta, layout.names_key)
    _check_names(meta, names, list(class_names), card_path)
    splits = {}
    for split, files in (("train", layout.train_files), ("test", layout.test_files)):
        absent = [f for f in files if not (folder / f).is_file()]
        if absent:
            raise missing(layout.title, f"the batch file(s) {', '.join(absent)}", [folder],
                          how_to_get(layout, folder.parent))
        parts = [read_cifar_batch(folder / f, layout.labels_key) for f in files]
        for part in parts:
            bad = part.labels[(part.labels < 0) | (part.labels >= len(names))]
            if bad.size:
                raise KgnetError(f"{part.files[0]}: label {int(bad[0])} is outside [0, {len(names)}) "
                                 f"for the {len(names)} classes in {meta}")
        splits[split] = _concat(parts)
    log.info("read %s from %s: %d train, %d test images", layout.title, folder,
             len(splits["train"]), len(splits["test"]))
    return ArrayDataset(splits["train"], splits["test"], names, folder)
