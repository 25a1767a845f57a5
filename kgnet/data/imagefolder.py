"""Image files in class folders (``root/train/<class>/*.jpg`` and ``root/val/`` or ``root/test/``).

This is the layout of Imagenette, ImageWoof and ImageNet (class folders named by WordNet id)
and the easiest one for a user's own photos. Folders are scanned once; images are decoded
with PIL only when an item is asked for, so data sets larger than memory work. When every
class folder is a wnid, the wnids are exposed so the WordNet ontology binds automatically,
and a tree whose wnids are exactly a shipped card's (Imagenette, ImageWoof, ImageNet-1k)
takes that card's readable class names and ontology. A file PIL cannot decode is a
`KgnetError` naming it; `verify_images` checks every file up front and lists all bad ones.
Symbolic links are followed out of the tree (a data set kept elsewhere on disk), never back
into it or round a loop, and every file named like an image must be a regular file: both are
refused by the scan with a message naming the link or file.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import random
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from kgnet.data.augment import SALT_CROP, epoch_key, random_bits
from kgnet.data.cards import DatasetCard, card_names, load_card
from kgnet.data.preprocess import Preprocessing, open_image, read_image
from kgnet.errors import DataMissingError, KgnetError
from kgnet.progress import progress

log = logging.getLogger(__name__)

#: File suffixes read as images (compared case-insensitively: ImageNet's files end in .JPEG).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
#: Folder names tried for the test split, in order (Imagenette and ImageNet call it ``val``).
TEST_FOLDERS = ("test", "val")
_WNID = re.compile(r"^n\d{8}$")
LAYOUT_HELP = ("expected root/train/<class>/<images> and root/val/<class>/<images> (or root/test/...), "
               "one sub-folder per class, as Imagenette/ImageWoof unpack")


@dataclass(frozen=True)
class ImageFolderTree:
    """What a scan of an image-folder tree found.

    Attributes:
        root: The tree's root.
        train_files: Training image files; ``train_labels`` gives each one's class index.
        train_labels: int64 [N].
        test_files: Test image files (from ``test/`` or ``val/``).
        test_labels: int64 [M].
        folders: Class folder names in label order (sorted, or the card's order).
        class_names: Readable class names: the matching card's, else ImageNet-1k's names for
            wnid folders that are all ImageNet classes, else the folder names.
        wnids: The folder names when all are WordNet ids, else None.
        card: The shipped card whose wnids the folders are exactly, else None.
    """

    root: Path
    train_files: list[Path]
    train_labels: np.ndarray
    test_files: list[Path]
    test_labels: np.ndarray
    folders: list[str]
    class_names: list[str]
    wnids: list[str] | None
    card: DatasetCard | None


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


#: How a class folder writes a `/`, which no file name can hold ("T-shirt%2Ftop" is T-shirt/top).
SLASH = "%2F"


def readable_name(name: str) -> str:
    """A folder name as the class's name: `SLASH` is a `/` (Fashion-MNIST's "T-shirt/top" is the
    folder T-shirt%2Ftop, and binds to the ontology's className "T-shirt/top"), and bytes that are
    not UTF-8 (Python keeps them as surrogates) become U+FFFD, so the class can be drawn in
    figures and written to JSON; the folder keeps its name."""
    return os.fsencode(name).decode("utf-8", "replace").replace(SLASH, "/").replace(SLASH.lower(), "/")


def _class_folders(split: Path) -> list[str]:
    return sorted(p.name for p in split.iterdir() if p.is_dir() and not p.name.startswith("."))


def _inside(path: Path, folder: Path) -> bool:
    """`path` is `folder` or lies below it (both resolved)."""
    return path == folder or folder in path.parents


def _scandir(folder: Path, top: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            return sorted(entries, key=lambda e: e.name)
    except OSError as err:
        raise KgnetError(f"image folder {top}: cannot read the folder {folder} ({err.strerror or err}); "
                         "make it readable (chmod u+rx) or remove it") from None


def _class_files(split: Path, name: str, scanned: Sequence[Path], seen: dict[tuple[int, int], Path]) -> list[Path]:
    """Image files below ``split/name``, following links only out of the scanned splits.

    A link to a folder or image elsewhere on disk (a data set kept on another drive) is
    followed. A link into a scanned split (`scanned`: the resolved train and test folders),
    to a folder holding one, or to a folder above the link (a loop) is refused: it would count
    images again, under another class or forever. So is reaching one real folder twice (`seen`
    holds the real folders already scanned, by device and inode, across classes and splits).
    Files named like images must be regular files (or links to them): a named pipe would hang
    the reader.
    """
    top = split / name
    where = f"image folder {top}"
    top_real = top.resolve()
    trees = (*scanned, top_real)
    found: list[Path] = []
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            info = folder.stat()
        except OSError as err:
            raise KgnetError(f"{where}: cannot read {folder} ({err.strerror or err}); fix or remove it") from None
        key = (info.st_dev, info.st_ino)
        folder_real = folder.resolve()
        if key in seen:
            raise KgnetError(f"{where}: {folder.relative_to(split)} is the folder {seen[key]} again (a symbolic "
                             "link), so its images would be counted twice; remove the link")
        seen[key] = folder
        subfolders: list[Path] = []
        for entry in _scandir(folder, top):
            path = Path(entry.path)
            shown = path.relative_to(split)
            link = entry.is_symlink()
            target = path.resolve() if link else path
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                if link and _inside(folder_real, target):
                    raise KgnetError(f"{where}: a symbolic link loop at {shown} (it points back to {target}, "
                                     "a folder above it); remove the link")
                if link and any(_inside(target, t) or _inside(t, target) for t in trees):
                    raise KgnetError(f"{where}: the symbolic link {shown} points back into the tree (to {target}), "
                                     "so its images would be counted twice, maybe under another class; remove the link")
                subfolders.append(path)
            elif _is_image(path):
                if link and not target.exists():
                    raise KgnetError(f"{where}: {shown} is a broken symbolic link (to {os.readlink(path)}, which "
                                     "does not exist); remove it or fix the link")
                if not entry.is_file():
                    raise KgnetError(f"{where}: {shown} is not a regular file (a named pipe, socket or device?), "
                                     "and reading it would hang; remove it")
                if link and any(_inside(target, t) for t in trees):
                    raise KgnetError(f"{where}: {shown} is a symbolic link to {target}, an image the scan counts "
                                     "already (maybe under another class); remove the link")
                found.append(path)
        stack.extend(reversed(subfolders))
    return found


def _files(split: Path, folders: list[str], scanned: Sequence[Path] = (),
           seen: dict[tuple[int, int], Path] | None = None) -> tuple[list[Path], np.ndarray]:
    """Image files under ``split/<folder>/`` (recursively, sorted) and their class indices.

    `scanned`: the resolved split folders links must not lead into (default: `split`);
    `seen`: real folders scanned already (shared between the splits).
    """
    seen = {} if seen is None else seen
    scanned = tuple(scanned) or (split.resolve(),)
    files: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(folders):
        folder = split / name
        found = sorted(_class_files(split, name, scanned, seen)) if folder.is_dir() else []
        files += found
        labels += [label] * len(found)
    return files, np.asarray(labels, dtype=np.int64)


@functools.lru_cache(maxsize=1)
def _imagefolder_cards() -> tuple[DatasetCard, ...]:
    """The shipped cards of image-folder data sets (parsed once: ImageNet-1k's has 1000 classes)."""
    return tuple(card for card in map(load_card, card_names()) if card.format == "imagefolder")


def match_card(wnids: Sequence[str]) -> DatasetCard | None:
    """The shipped imagefolder card whose wnids are exactly `wnids` (as a set), else None."""
    wanted = set(wnids)
    return next((card for card in _imagefolder_cards() if set(card.wnids) == wanted), None)


def scan_image_folder(root: str | Path) -> ImageFolderTree:
    """Find the classes and image files of an image-folder tree.

    Args:
        root: Folder holding ``train/`` and ``val/`` or ``test/``.

    Returns:
        The files and labels of both splits, class names, wnids and matching card.

    Raises:
        DataMissingError: `root` does not exist.
        KgnetError: No ``train/`` or test folder, no class folders, a class folder without
            images, or test classes that training does not have.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataMissingError(
            f"image folder {root} not found ({LAYOUT_HELP}). For Imagenette or ImageWoof, download "
            "and unpack the archive named in datasets/imagenette.yaml or datasets/imagewoof.yaml "
            "and set data.root to the unpacked folder")
    train_dir = root / "train"
    test_dir = next((root / t for t in TEST_FOLDERS if (root / t).is_dir()), None)
    if not train_dir.is_dir() or test_dir is None:
        lacking = "train/" if not train_dir.is_dir() else "val/ or test/"
        raise KgnetError(f"{root}: no {lacking} folder; {LAYOUT_HELP}")
    if test_dir.name == "test" and (root / "val").is_dir():
        log.info("%s has both test/ and val/: test/ is the test split, val/ is not used "
                 "(validation is carved out of train/)", root)
    folders = _class_folders(train_dir)
    if not folders:
        raise KgnetError(f"{train_dir}: no class sub-folders; {LAYOUT_HELP}")
    extra = sorted(set(_class_folders(test_dir)) - set(folders))
    if extra:
        raise KgnetError(f"{test_dir}: class folder(s) {', '.join(extra)} have no counterpart in "
                         f"{train_dir}; the splits must share their classes")

    wnids = folders if all(_WNID.match(f) for f in folders) else None
    card = match_card(wnids) if wnids else None
    class_names = [readable_name(f) for f in folders]
    if len(set(class_names)) < len(class_names):
        raise KgnetError(f"{train_dir}: class folders {', '.join(n for n in class_names if class_names.count(n) > 1)} "
                         "name one class (they differ only in bytes that are not UTF-8, or in %2F against %2f); rename them")
    if card is not None:  # the card's label order (sorted wnids for the shipped ones) and names
        folders, class_names, wnids = list(card.wnids), list(card.classes), list(card.wnids)
    elif wnids:  # some other ImageNet subset: readable names where ImageNet-1k has the class
        imagenet = next(card for card in _imagefolder_cards() if card.name == "imagenet1k")
        names = dict(zip(imagenet.wnids, imagenet.classes))
        if all(w in names for w in wnids):
            class_names = [names[w] for w in wnids]

    seen: dict[tuple[int, int], Path] = {}  # real folders scanned: none is counted twice
    scanned = (train_dir.resolve(), test_dir.resolve())
    train_files, train_labels = _files(train_dir, folders, scanned, seen)
    test_files, test_labels = _files(test_dir, folders, scanned, seen)
    empty = [f for i, f in enumerate(folders) if not np.any(train_labels == i)]
    if empty:
        raise KgnetError(f"{train_dir}: class folder(s) without images ({', '.join(IMAGE_SUFFIXES)}): "
                         f"{', '.join(empty)}")
    no_test = [f for i, f in enumerate(folders) if not np.any(test_labels == i)]
    if no_test:
        log.warning("%s: no test images for class(es) %s", test_dir, ", ".join(no_test))
    log.info("scanned %s: %d classes%s, %d train and %d test images", root, len(folders),
             f" (the {card.name} card)" if card else "", len(train_files), len(test_files))
    return ImageFolderTree(root, train_files, train_labels, test_files, test_labels, folders,
                           class_names, wnids, card)


def _check_one(path: Path) -> str | None:
    """What is wrong with an image file, or None when it decodes."""
    try:
        open_image(path, "RGB", draft=64)
    except KgnetError as err:
        return str(err)
    return None


def verify_images(files: Sequence[Path], workers: int | None = None) -> None:
    """Decode every file up front and report all unreadable ones in one error.

    Args:
        files: Image files.
        workers: Decoding threads (PIL releases the GIL while decoding); None = CPU count.

    Raises:
        KgnetError: Listing every file that does not decode.
    """
    workers = workers or os.cpu_count() or 1
    with ThreadPoolExecutor(workers) as pool:
        problems = [p for p in progress(pool.map(_check_one, files, chunksize=16), total=len(files),
                                        desc="verify images", unit="img") if p]
    if problems:
        raise KgnetError(f"{len(problems)} of {len(files)} image files cannot be read; remove or "
                         "replace them:\n  " + "\n  ".join(problems))
    log.info("verified %d image files", len(files))


def random_resized_crop_box(width: int, height: int, rng: random.Random,
                            scale: tuple[float, float] = (0.35, 1.0),
                            ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> tuple[int, int, int, int]:
    """A random crop box (left, top, right, bottom) as torchvision's RandomResizedCrop samples it.

    Area a fraction in `scale` of the image, aspect ratio log-uniform in `ratio`; after ten
    misses, the largest central crop within `ratio`.
    """
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            left, top = rng.randint(0, width - w), rng.randint(0, height - h)
            return left, top, left + w, top + h
    aspect = width / height
    if aspect < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif aspect > ratio[1]:
        w, h = round(height * ratio[1]), height
    else:
        w, h = width, height
    left, top = (width - w) // 2, (height - h) // 2
    return left, top, left + w, top + h


class ImageFiles(Dataset):
    """Image files decoded lazily, yielding ``(float image [3,S,S], int label)``.

    Training augmentation is the ImageNet recipe, which suits photos of any size: a random
    crop of 35-100% of the area (aspect 3/4-4/3) resized to S, and a left-right flip, with
    random choices from (seed, epoch, index) as in `InMemoryImages`. Without augmentation an
    image is read exactly as `kgnet.predict` reads a file (`kgnet.data.preprocess.read_image`:
    timm's centre crop of `crop_pct` of the shorter side, resized to S).

    Args:
        files: Image files.
        labels: int64 class index per file.
        preprocessing: Size, interpolation, normalisation and evaluation crop (three channels:
            images are decoded as RGB).
        augment: Apply the training augmentation.
        seed: Base seed of the augmentation.
    """

    #: Channels of a yielded image: every file is decoded as RGB.
    in_chans = 3

    def __init__(self, files: Sequence[Path], labels: np.ndarray | Sequence[int], *, preprocessing: Preprocessing,
                 augment: bool = False, seed: int = 0) -> None:
        self.files = list(files)
        self.labels = torch.as_tensor(np.asarray(labels, dtype=np.int64))
        if len(self.files) != len(self.labels):
            raise ValueError(f"{len(self.files)} files but {len(self.labels)} labels")
        if preprocessing.in_chans != self.in_chans:
            raise ValueError(f"image folders are read as RGB, not {preprocessing.in_chans} channel(s)")
        self.preprocessing = preprocessing
        self.augment = augment
        self.seed = seed
        self.epoch: int | None = None
        self._mean = torch.tensor(preprocessing.mean).view(-1, 1, 1) * 255.0
        self._scale = 1.0 / (torch.tensor(preprocessing.std).view(-1, 1, 1) * 255.0)

    @property
    def output_size(self) -> int:
        """Side length of a yielded image."""
        return self.preprocessing.image_size

    def set_epoch(self, epoch: int) -> None:
        """Fix the augmentation of the coming epoch to (seed, `epoch`)."""
        self.epoch = epoch

    def subset(self, indices: Sequence[int] | np.ndarray) -> "ImageFiles":
        """A new dataset of the files at `indices`, with the same settings."""
        index = np.asarray(indices, dtype=np.int64)
        return ImageFiles([self.files[i] for i in index], self.labels.numpy()[index],
                          preprocessing=self.preprocessing, augment=self.augment, seed=self.seed)

    def without_augment(self) -> "ImageFiles":
        """The same files without augmentation (read as for prediction), for evaluation."""
        return ImageFiles(self.files, self.labels.numpy(), preprocessing=self.preprocessing, seed=self.seed)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path = self.files[index]
        try:
            if not self.augment:
                return read_image(path, self.preprocessing), int(self.labels[index])
            size = self.output_size
            img = open_image(path, "RGB", draft=2 * size)
        except KgnetError as err:
            raise KgnetError(f"{err} (data.verify=true lists every unreadable file before training)") from None
        rng = random.Random(int(random_bits(epoch_key(self.seed, self.epoch), index, SALT_CROP)))
        box = random_resized_crop_box(*img.size, rng)
        resample = Image.BICUBIC if self.preprocessing.interpolation == "bicubic" else Image.BILINEAR
        img = img.resize((size, size), resample, box=box)
        if rng.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        pixels = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)
        return (pixels.float() - self._mean) * self._scale, int(self.labels[index])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} files -> {self.output_size}px, augment={self.augment})"
