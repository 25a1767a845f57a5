"""Fashion-MNIST's IDX files, read and checked without any third-party reader.

The IDX format is a 4-byte big-endian magic number (2051 for images, 2049 for labels: two zero
bytes, a type code 0x08 = uint8 and the number of dimensions), one big-endian uint32 per
dimension, then the raw bytes. Parsing it ourselves means a wrong, truncated or mismatched file
is reported as exactly that, naming the file, instead of surfacing as a reshape error.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from pathlib import Path

import numpy as np

from kgnet.data.arrays import ArrayDataset, ImageArrays
from kgnet.data.locate import data_home, find_folder, missing, search_folders
from kgnet.errors import KgnetError

log = logging.getLogger(__name__)

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
_KIND = {IMAGES_MAGIC: "images", LABELS_MAGIC: "labels"}
_NDIM = {IMAGES_MAGIC: 3, LABELS_MAGIC: 1}
#: The four original file names (without ``.gz``) of each official split.
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
#: torchvision's FashionMNIST(download=True) unpacks the files into this sub-folder of its root.
TORCHVISION_SUBDIR = Path("FashionMNIST") / "raw"
HOW_TO_GET = (
    "on Debian/Ubuntu `apt-get install dataset-fashion-mnist` (installs them in "
    "/usr/share/datasets/fashion-mnist); or, with internet, set `data.download: true` "
    "(download=True) to fetch them with torchvision.datasets.FashionMNIST into "
    "{home}; or set data.root to a folder holding the four files "
    "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
    "t10k-labels-idx1-ubyte.gz (gzipped or not)"
)


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic (whatever its suffix)."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
            f.seek(0)
            if head == b"\x1f\x8b":
                with gzip.GzipFile(fileobj=f) as gz:
                    return gz.read()
            return f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise KgnetError(f"{path}: cannot decompress ({err}); the file is truncated or corrupt, "
                         "get it again") from None
    except OSError as err:
        raise KgnetError(f"{path}: cannot read: {err}") from None


def read_idx(path: str | Path, magic: int) -> np.ndarray:
    """Read one IDX file (gzipped or raw) whose magic number must be `magic`.

    Args:
        path: The file.
        magic: `IMAGES_MAGIC` (2051, uint8 [N,H,W]) or `LABELS_MAGIC` (2049, uint8 [N]).

    Returns:
        A writable uint8 array with the dimensions the header gives.

    Raises:
        KgnetError: Unreadable file, wrong magic number (not this kind of IDX file), or a data
            section shorter or longer than the header promises.
    """
    path = Path(path)
    raw = _read_bytes(path)
    kind = _KIND[magic]
    if len(raw) < 4:
        raise KgnetError(f"{path}: {len(raw)} bytes is too short for an IDX header; the file is "
                         "truncated or empty, get it again")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        other = f" (that is an IDX {_KIND[found]} file)" if found in _KIND else ""
        raise KgnetError(f"{path}: not an IDX {kind} file: magic number {found}{other}, "
                         f"expected {magic}")
    ndim = _NDIM[magic]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise KgnetError(f"{path}: truncated IDX header ({len(raw)} bytes, need {header}); "
                         "get the file again")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    size = int(np.prod(dims))
    have = len(raw) - header
    if have != size:
        problem = "truncated" if have < size else "has trailing bytes"
        raise KgnetError(f"{path}: {problem}: the header promises {' x '.join(map(str, dims))} = "
                         f"{size} bytes of {kind}, the file holds {have}; get the file again")
    return np.frombuffer(raw, np.uint8, count=size, offset=header).reshape(dims).copy()


def _split_files(folder: Path, split: str) -> tuple[Path, Path] | None:
    """The images and labels files of `split` in `folder`, raw preferred over ``.gz``; None if absent."""
    found = []
    for stem in FILES[split]:
        path = next((p for p in (folder / stem, folder / f"{stem}.gz") if p.is_file()), None)
        if path is None:
            return None
        found.append(path)
    return found[0], found[1]


def _holds_fashion_mnist(folder: Path) -> Path | None:
    """`folder` (or its torchvision sub-folder) when it holds all four files."""
    for candidate in (folder, folder / TORCHVISION_SUBDIR):
        if all(_split_files(candidate, split) for split in FILES):
            return candidate
    return None


def read_idx_split(images_path: Path, labels_path: Path, num_classes: int) -> ImageArrays:
    """Read and cross-check one split's images and labels files.

    Raises:
        KgnetError: A bad file, a different number of images and labels, or a label outside
            ``[0, num_classes)``.
    """
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if len(images) != len(labels):
        raise KgnetError(f"{images_path} holds {len(images)} images but {labels_path} holds "
                         f"{len(labels)} labels; the files do not belong together")
    if len(labels) and int(labels.max()) >= num_classes:
        raise KgnetError(f"{labels_path}: label {int(labels.max())} is out of range for "
                         f"{num_classes} classes")
    return ImageArrays(images, labels.astype(np.int64), (images_path, labels_path))


def find_fashion_mnist(root: str | Path | None = None, local_paths: tuple[Path, ...] = ()) -> Path:
    """The folder holding the four Fashion-MNIST files.

    Args:
        root: The folder the user named (then the only place searched).
        local_paths: Known system folders (the card's ``local_paths``).

    Raises:
        DataMissingError: The files are in none of the searched folders; says how to get them.
    """
    folders = search_folders("fashion_mnist", root, local_paths)
    found = find_folder(folders, _holds_fashion_mnist)
    if found is None:
        target = Path(root).expanduser() if root is not None else data_home("fashion_mnist")
        raise missing("Fashion-MNIST", "the four *-ubyte(.gz) IDX files", folders,
                      HOW_TO_GET.format(home=target))
    return found


def read_fashion_mnist(folder: str | Path, class_names: list[str]) -> ArrayDataset:
    """Read Fashion-MNIST from a folder holding its four IDX files.

    Args:
        folder: The folder (as `find_fashion_mnist` returns it).
        class_names: The ten class names in label order (the IDX files carry none; the card
            gives them).

    Returns:
        uint8 images [N,28,28] and int64 labels for the 60,000 training and 10,000 test images.
    """
    folder = Path(folder)
    splits = {}
    for split in FILES:
        files = _split_files(folder, split)
        if files is None:
            raise missing("Fashion-MNIST", f"the {split} files {' and '.join(FILES[split])}",
                          [folder], HOW_TO_GET.format(home=folder))
        splits[split] = read_idx_split(*files, num_classes=len(class_names))
    log.info("read Fashion-MNIST from %s: %d train, %d test images", folder,
             len(splits["train"]), len(splits["test"]))
    return ArrayDataset(splits["train"], splits["test"], list(class_names), folder)
