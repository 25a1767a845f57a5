"""From a `DataConfig` to ready torch Datasets: read, keep the chosen classes, split, hold out, subsample, augment.

This is the one place the training CLI, the benchmarks and the tests get their data from, so
every variant of a run sees identical images in identical splits: the split depends only on
the data set and the seed, augmentation only on (seed, epoch, image), never on the variant.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence, Union

import numpy as np

from kgnet.config import DataConfig
from kgnet.data.arrays import ArrayDataset
from kgnet.data.augment import Augment
from kgnet.data.cifar import LAYOUTS, find_cifar, read_cifar
from kgnet.data.download import download as download_data
from kgnet.data.idx import find_fashion_mnist, read_fashion_mnist
from kgnet.data.cards import DatasetCard, load_card
from kgnet.data.imagefolder import ImageFiles, ImageFolderTree, scan_image_folder, verify_images
from kgnet.data.in_memory import InMemoryImages
from kgnet.data.locate import data_home
from kgnet.data.preprocess import Preprocessing, resolve_preprocessing
from kgnet.data.splits import make_splits, resolve_class_names, subsample_per_class
from kgnet.errors import ConfigError, DataMissingError, KgnetError

log = logging.getLogger(__name__)

ImageDataset = Union[InMemoryImages, ImageFiles]

#: Training augmentation of the in-memory data sets (`data.augment` switches it on, and
#: `data.augment_pad` overrides it). A 4-pixel shifted crop plus flip is the standard CIFAR
#: recipe. Fashion-MNIST gets 2-pixel shifts and flips: with few images per class (the default)
#: they raised resnet10t's validation top-1 from 31% to 34% at 1 image per class and from 61% to
#: 69% at 10 (benchmarks/results/design/recipe.jsonl, 3 seeds). On all 54,000 images within a
#: 3-epoch CPU budget they cost accuracy (89.5% against 92.1% without), so the full-data regimes
#: of the suite switch them off (`data.augment_pad=0`).
AUGMENT: dict[str, Augment | None] = {
    "fashion_mnist": Augment(pad=2, flip=True),
    "cifar10": Augment(pad=4, flip=True),
    "cifar100": Augment(pad=4, flip=True),
}


#: Seed of the `data.test_per_class` subset: fixed, so every seed and variant scores the same images.
TEST_SUBSET_SEED = 20261128


def _augmentation(name: str, pad: int | None) -> Augment | None:
    """The data set's augmentation, or `pad`-pixel shifted crops with flips (`data.augment_pad`)."""
    if pad is None:
        return AUGMENT[name]
    return Augment(pad=pad, flip=True) if pad > 0 else None


@dataclass
class DataBundle:
    """Everything a training run needs to know about its data.

    Attributes:
        name: ``fashion_mnist``, ``cifar10``, ``cifar100`` or ``imagefolder``.
        train: Training images (augmented when asked), seen classes only.
        val: Validation images from the official training split, seen classes only, never
            augmented.
        test: The official test split, all classes (held-out ones included), never augmented.
        class_names: Name of each label (label i is ``class_names[i]``): the data set's classes,
            or the ones `data.classes` keeps.
        wnids: WordNet 3.0 id of each label when known (the card's, or wnid-named folders).
        card: The dataset card that applies (its ontology binds to these classes), or None.
        preprocessing: How every image became model input (size, normalisation, crop);
            releases store it, so prediction prepares images the same way.
        seen_classes: Label indices trained on.
        unseen_classes: Label indices held out (evaluate zero-shot on the test split).
        source: The folder the files were read from.
        dataset_classes: Every class of the data set, in its label order (``class_names`` when
            `data.classes` keeps them all).
        novel_classes: Label indices of the seen classes trained on few images
            (`data.novel_classes`); the other seen classes are the base classes.
    """

    name: str
    train: ImageDataset
    val: ImageDataset
    test: ImageDataset
    class_names: list[str]
    wnids: list[str] | None
    card: DatasetCard | None
    preprocessing: Preprocessing
    seen_classes: list[int]
    unseen_classes: list[int]
    source: Path
    dataset_classes: list[str]
    novel_classes: list[int] = field(default_factory=list)

    @property
    def in_chans(self) -> int:
        """Channels of a yielded image (1 for Fashion-MNIST, else 3)."""
        return self.preprocessing.in_chans

    @property
    def image_size(self) -> int:
        """Side length of a yielded image."""
        return self.preprocessing.image_size

    @property
    def num_classes(self) -> int:
        """Number of classes, held-out ones included."""
        return len(self.class_names)

    @property
    def dataset_labels(self) -> list[int]:
        """Each class's label in the data set (its index in `dataset_classes`), by label here."""
        position = {name: i for i, name in enumerate(self.dataset_classes)}
        return [position[name] for name in self.class_names]

    def set_epoch(self, epoch: int) -> None:
        """Fix the training augmentation of the coming epoch (call once per epoch)."""
        self.train.set_epoch(epoch)

    def summary(self) -> str:
        """One line for logs: sizes of the splits, classes, image shape."""
        held = f", {len(self.unseen_classes)} held out" if self.unseen_classes else ""
        held += f", {len(self.novel_classes)} novel" if self.novel_classes else ""
        of = f" of {len(self.dataset_classes)}" if len(self.dataset_classes) > self.num_classes else ""
        return (f"{self.name}: {len(self.train)} train / {len(self.val)} val / {len(self.test)} test images, "
                f"{self.num_classes}{of} classes{held}, {self.in_chans}x{self.image_size}x{self.image_size}")


def _locate(name: str, root: str | None, download: bool, find: Callable[[], Path]) -> Path:
    """`find()`, downloading first when it fails and the user asked for a download."""
    try:
        return find()
    except DataMissingError:
        if not download:
            raise
    download_data(name, root if root is not None else data_home(name))
    return find()


def read_arrays(name: str, root: str | None = None,
                download: bool = False) -> tuple[ArrayDataset, DatasetCard]:
    """Read an in-memory data set (``fashion_mnist``, ``cifar10``, ``cifar100``) and its card.

    Args:
        name: The data set.
        root: Folder holding its files; None searches the known places.
        download: Fetch it (internet) when it is not found. Never implied.

    Raises:
        DataMissingError: Not found (and not downloaded); says how to get it.
        KgnetError: Corrupt files or class names that differ from the card's.
    """
    card = load_card(name)
    if name == "fashion_mnist":
        local = tuple(card.local_paths)
        folder = _locate(name, root, download, lambda: find_fashion_mnist(root, local))
        return read_fashion_mnist(folder, card.classes), card
    layout = LAYOUTS[name]
    folder = _locate(name, root, download, lambda: find_cifar(layout, root))
    return read_cifar(folder, layout, card.classes, card.path), card


def select_classes(names: Sequence[str], class_names: Sequence[str], *, what: str = "data.classes",
                   aliases: Mapping[str, str] | None = None) -> list[int]:
    """The label indices of the classes `names` picks out of `class_names`, in the data set's order.

    Args:
        names: Class names as the data set spells them (or, through `aliases`, other names of
            them, such as an image folder's folder names), in any order.
        class_names: The data set's classes in label order.
        what: The setting `names` came from, for messages (``--classes`` on the kg command).
        aliases: Other name -> class name.

    Raises:
        ConfigError: Fewer than 2 classes, a class named twice, or unknown names (every one,
            with its close matches, and the classes there are).
    """
    if len(names) < 2:
        raise ConfigError(f"{what} names {len(names)} class{'' if len(names) == 1 else 'es'}: a classifier needs at "
                          f"least 2; name more of the data set's classes, or leave {what} out for all of them")
    resolved = [aliases.get(name, name) for name in names] if aliases else list(names)
    try:
        chosen = resolve_class_names(resolved, class_names, what)
    except KgnetError as err:  # the same words as for held-out classes, but a setting's mistake
        raise ConfigError(str(err)) from None
    twice = next((name for i, name in enumerate(resolved) if name in resolved[:i]), None)
    if twice is not None:
        spelt = sorted({given for given, name in zip(names, resolved) if name == twice})
        by = f" (as {' and '.join(repr(s) for s in spelt)})" if len(spelt) > 1 else ""
        raise ConfigError(f"{what} lists {twice!r} twice{by}; name each once")
    return chosen


def _kept(labels: np.ndarray, chosen: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The positions of the images of the classes `chosen` (sorted label indices) and their labels
    renumbered 0..len(chosen)-1 in that order."""
    labels = np.asarray(labels, dtype=np.int64)
    positions = np.flatnonzero(np.isin(labels, chosen))
    return positions, np.searchsorted(np.asarray(chosen, dtype=np.int64), labels[positions])


def _arrays_of(arrays: ArrayDataset, chosen: Sequence[int]) -> ArrayDataset:
    """`arrays` with only the images of the classes `chosen`, relabelled (see `_kept`)."""
    splits = []
    for split in (arrays.train, arrays.test):
        positions, labels = _kept(split.labels, chosen)
        splits.append(dataclasses.replace(split, images=split.images[positions], labels=labels))
    return dataclasses.replace(arrays, train=splits[0], test=splits[1],
                               class_names=[arrays.class_names[c] for c in chosen])


def _tree_of(tree: ImageFolderTree, chosen: Sequence[int]) -> ImageFolderTree:
    """`tree` with only the files of the classes `chosen`, relabelled (see `_kept`)."""
    train, train_labels = _kept(tree.train_labels, chosen)
    test, test_labels = _kept(tree.test_labels, chosen)
    return dataclasses.replace(
        tree, train_files=[tree.train_files[i] for i in train], train_labels=train_labels,
        test_files=[tree.test_files[i] for i in test], test_labels=test_labels,
        folders=[tree.folders[c] for c in chosen], class_names=[tree.class_names[c] for c in chosen],
        wnids=[tree.wnids[c] for c in chosen] if tree.wnids is not None else None)


def _check_within(names: Sequence[str], what: str, kept: Sequence[str], dataset_classes: Sequence[str]) -> None:
    """ConfigError for classes of the data set that `what` names but `data.classes` leaves out."""
    left_out = [name for name in names if name in dataset_classes and name not in kept]
    if left_out:
        raise ConfigError(f"{what} names {', '.join(repr(n) for n in left_out)}, which data.classes leaves out; "
                          f"add {'it' if len(left_out) == 1 else 'them'} to data.classes or drop "
                          f"{'it' if len(left_out) == 1 else 'them'} from {what}")


def build_datasets(cfg: DataConfig, *, seed: int = 0, download: bool = False, augment: bool = True,
                   verify: bool = False, preprocessing: Preprocessing | None = None) -> DataBundle:
    """Build the train, validation and test datasets a run asks for.

    Args:
        cfg: The data settings (name, root, classes, samples_per_class, held_out_classes,
            val_fraction, image_size).
        seed: The run's base seed (the same on every rank and for every variant).
        download: Fetch a missing Fashion-MNIST/CIFAR with torchvision (needs internet).
        augment: Augment the training split (random shifted crops and flips).
        verify: Decode every ImageFolder file up front and list all unreadable ones.
        preprocessing: How images become model input: the run's (`resolve_preprocessing` of
            its data and model settings) or a release's; None = `resolve_preprocessing(cfg)`,
            a model trained from scratch.

    Returns:
        The datasets and what the model and metrics need to know about them.

    Raises:
        ConfigError: ``imagefolder`` without ``data.root``; `data.classes` naming fewer than 2,
            unknown or repeated classes; held-out or novel classes it leaves out.
        DataMissingError: The data is not on this machine; says how to get it.
        KgnetError: Corrupt or inconsistent files, unknown held-out classes.
    """
    name = cfg.name
    spec = preprocessing or resolve_preprocessing(cfg)
    held_out, novel = list(cfg.held_out_classes), list(cfg.novel_classes)
    if name == "imagefolder":
        if cfg.root is None:
            raise ConfigError("data.root must name the image folder (holding train/ and val/ or test/) "
                              "when data.name is imagefolder")
        if download:
            raise KgnetError("download works for fashion_mnist, cifar10 and cifar100; for an image "
                             "folder (Imagenette, ImageWoof, ...) download and unpack it yourself "
                             "(see the urls in datasets/imagenette.yaml) and set data.root")
        tree = scan_image_folder(cfg.root)
        aliases = dict(zip(tree.folders, tree.class_names))  # hold out by folder name (wnid) too
        held_out, novel = [aliases.get(n, n) for n in held_out], [aliases.get(n, n) for n in novel]
        dataset_classes = list(tree.class_names)
        if cfg.classes is not None:
            tree = _tree_of(tree, select_classes(cfg.classes, dataset_classes, aliases=aliases))
        if verify:
            verify_images(tree.train_files + tree.test_files)
        class_names, wnids, card, source = tree.class_names, tree.wnids, tree.card, tree.root
        train_labels, test_labels = tree.train_labels, tree.test_labels
        full_train: ImageDataset = ImageFiles(tree.train_files, train_labels, preprocessing=spec, augment=augment,
                                              seed=seed)
        test: ImageDataset = ImageFiles(tree.test_files, test_labels, preprocessing=spec)
    else:
        arrays, card = read_arrays(name, cfg.root, download)
        dataset_classes, wnids = list(arrays.class_names), list(card.wnids)
        if cfg.classes is not None:
            chosen = select_classes(cfg.classes, dataset_classes)
            arrays, wnids = _arrays_of(arrays, chosen), [wnids[c] for c in chosen]
        class_names, source = arrays.class_names, arrays.folder
        train_labels, test_labels = arrays.train.labels, arrays.test.labels
        channels_last = arrays.train.images.ndim == 4
        common = dict(stats=spec.stats, image_size=spec.image_size, interpolation=spec.interpolation,
                      channels_last=channels_last)
        full_train = InMemoryImages(arrays.train.images, train_labels, augment=_augmentation(name, cfg.augment_pad) if augment else None,
                                    seed=seed, **common)
        test = InMemoryImages(arrays.test.images, test_labels, **common)

    if cfg.classes is not None:  # held-out and novel classes are among the kept ones, or a typo elsewhere
        _check_within(held_out, "data.held_out_classes", class_names, dataset_classes)
        _check_within(novel, "data.novel_classes", class_names, dataset_classes)
    keys = [dataset_classes.index(name) for name in class_names]  # a class draws as in a run of every class
    splits = make_splits(train_labels, test_labels, class_names, val_fraction=cfg.val_fraction,
                         samples_per_class=cfg.samples_per_class, held_out_classes=held_out,
                         novel_classes=novel,
                         novel_samples_per_class=cfg.novel_samples_per_class, seed=seed, keys=keys)
    train = full_train.subset(splits.train)
    val = full_train.subset(splits.val).without_augment()
    if cfg.score_split == "validation":  # designs are chosen here; the test split only reports
        scored = np.sort(np.concatenate([splits.val, splits.val_unseen]))
        test, test_labels = full_train.subset(scored).without_augment(), np.asarray(train_labels)[scored]
    if cfg.test_per_class is not None:
        labels = np.asarray(test_labels, dtype=np.int64)
        test = test.subset(subsample_per_class(labels, np.arange(len(labels)), cfg.test_per_class, TEST_SUBSET_SEED,
                                               class_names, what="data.test_per_class", split=cfg.score_split,
                                               keys=keys))
    bundle = DataBundle(
        name=name, train=train, val=val, test=test, class_names=list(class_names),
        wnids=list(wnids) if wnids is not None else None, card=card, preprocessing=spec,
        seen_classes=splits.seen_classes,
        unseen_classes=splits.unseen_classes, source=Path(source), dataset_classes=dataset_classes,
        novel_classes=splits.novel_classes)
    log.info("%s", bundle.summary())
    return bundle

