"""kgnet.data: real Fashion-MNIST, CIFAR and image folders in their on-disk formats, splits, augmentation.

CIFAR and image-folder data are not on this machine, so the tests write small files in exactly
the official formats (CIFAR's python pickles with bytes keys and CHW rows; JPEG/PNG files in
wnid-named class folders) and read them back through the same code a user's copy goes through.
"""

from __future__ import annotations

import gzip
import logging
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from cifar_files import cifar_rows, dump_cifar, write_cifar10, write_cifar100
from kgnet.config import DataConfig
from kgnet.data import (
    AUGMENT,
    CIFAR10,
    CIFAR100,
    PIXEL_STATS,
    Augment,
    InMemoryImages,
    build_datasets,
    make_splits,
    read_arrays,
    read_cifar,
    read_idx,
    scan_image_folder,
    stratified_split,
    subsample_per_class,
    verify_images,
)
from kgnet.data.augment import crop_flip, paint_noise
from kgnet.data.idx import IMAGES_MAGIC, LABELS_MAGIC, find_fashion_mnist, read_fashion_mnist
from kgnet.data.locate import data_home
from kgnet.data.cards import load_card
from kgnet.errors import DataMissingError, KgnetError

FMNIST = Path("/usr/share/datasets/fashion-mnist")


# ---------------------------------------------------------------------------------------------
# Fashion-MNIST: the real files


@pytest.fixture(scope="module")
def fashion():
    """The real Fashion-MNIST, read once for the module."""
    if not (FMNIST / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Debian package dataset-fashion-mnist is not installed (make data)")
    return read_arrays("fashion_mnist")


def test_fashion_mnist_real_files(fashion) -> None:
    arrays, card = fashion
    assert arrays.folder == FMNIST
    assert arrays.train.images.shape == (60000, 28, 28) and arrays.test.images.shape == (10000, 28, 28)
    assert arrays.train.images.dtype == np.uint8 and arrays.train.labels.dtype == np.int64
    assert np.bincount(arrays.train.labels).tolist() == [6000] * 10
    assert np.bincount(arrays.test.labels).tolist() == [1000] * 10
    assert arrays.class_names == card.classes == load_card("fashion_mnist").classes
    assert arrays.class_names[0] == "T-shirt/top" and arrays.class_names[9] == "Ankle boot"


def test_fashion_mnist_pixel_stats_are_the_training_sets(fashion) -> None:
    counts = np.bincount(fashion[0].train.images.ravel(), minlength=256)
    values = np.arange(256) / 255
    mean = (counts * values).sum() / counts.sum()
    std = np.sqrt((counts * (values - mean) ** 2).sum() / counts.sum())
    stats = PIXEL_STATS["fashion_mnist"]
    assert mean == pytest.approx(stats.mean[0], abs=5e-4) and std == pytest.approx(stats.std[0], abs=5e-4)


def test_build_fashion_mnist_default() -> None:
    if not FMNIST.is_dir():
        pytest.skip("Debian package dataset-fashion-mnist is not installed (make data)")
    data = build_datasets(DataConfig(), seed=0)
    assert (len(data.train), len(data.val), len(data.test)) == (50, 6000, 10000)  # the 5-image demo
    data = build_datasets(DataConfig(samples_per_class=None), seed=0)
    assert (len(data.train), len(data.val), len(data.test)) == (54000, 6000, 10000)
    assert (data.in_chans, data.image_size, data.num_classes) == (1, 28, 10)
    assert data.card is not None and data.card.name == "fashion_mnist"
    assert data.wnids == data.card.wnids and data.unseen_classes == [] and data.seen_classes == list(range(10))
    image, label = data.test[0]
    assert image.shape == (1, 28, 28) and image.dtype == torch.float32 and isinstance(label, int)
    data.set_epoch(0)
    images, labels = next(iter(DataLoader(data.train, batch_size=128, shuffle=True)))
    assert images.shape == (128, 1, 28, 28) and labels.dtype == torch.int64
    assert abs(images.mean().item()) < 0.3 and 0.7 < images.std().item() < 1.3  # normalised


def test_build_fashion_mnist_low_data_held_out_resized() -> None:
    if not FMNIST.is_dir():
        pytest.skip("Debian package dataset-fashion-mnist is not installed (make data)")
    cfg = DataConfig(samples_per_class=10, held_out_classes=["Sandal", "Bag"], image_size=32)
    data = build_datasets(cfg, seed=3)
    assert data.unseen_classes == [5, 8] and len(data.seen_classes) == 8
    assert np.bincount(data.train.labels.numpy(), minlength=10).tolist() == [10] * 5 + [0] + [10] * 2 + [0, 10]
    assert not set(data.val.labels.tolist()) & {5, 8}
    assert {5, 8} <= set(data.test.labels.tolist()) and len(data.test) == 10000
    assert data.image_size == 32
    assert data.train[0][0].shape == (1, 32, 32) and data.test[0][0].shape == (1, 32, 32)


# ---------------------------------------------------------------------------------------------
# IDX files: format and errors


def _idx_bytes(magic: int, array: np.ndarray) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_fashion(folder: Path, n_train: int = 20, n_test: int = 10, gz: bool = True) -> np.ndarray:
    """Small valid Fashion-MNIST files in the original format; returns the training images."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    files = {
        "train-images-idx3-ubyte": _idx_bytes(IMAGES_MAGIC, train),
        "train-labels-idx1-ubyte": _idx_bytes(LABELS_MAGIC, np.arange(n_train) % 10),
        "t10k-images-idx3-ubyte": _idx_bytes(IMAGES_MAGIC, rng.integers(0, 256, (n_test, 28, 28))),
        "t10k-labels-idx1-ubyte": _idx_bytes(LABELS_MAGIC, np.arange(n_test) % 10),
    }
    for name, data in files.items():
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return train


@pytest.mark.parametrize("gz", [True, False])
def test_idx_reader_round_trip(tmp_path: Path, gz: bool) -> None:
    train = _write_fashion(tmp_path, gz=gz)
    arrays = read_fashion_mnist(find_fashion_mnist(tmp_path), load_card("fashion_mnist").classes)
    np.testing.assert_array_equal(arrays.train.images, train)
    assert arrays.train.labels.tolist() == [i % 10 for i in range(20)] and len(arrays.test) == 10


def test_idx_reader_finds_torchvision_layout(tmp_path: Path) -> None:
    _write_fashion(tmp_path / "FashionMNIST" / "raw", gz=False)
    assert find_fashion_mnist(tmp_path) == tmp_path / "FashionMNIST" / "raw"


def test_idx_wrong_magic(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(_idx_bytes(LABELS_MAGIC, np.zeros(5)))
    with pytest.raises(KgnetError, match=r"train-images-idx3-ubyte: not an IDX images file: magic number "
                                         r"2049 \(that is an IDX labels file\), expected 2051"):
        read_idx(path, IMAGES_MAGIC)
    path.write_bytes(b"<html>404</html>")
    with pytest.raises(KgnetError, match="not an IDX images file"):
        read_idx(path, IMAGES_MAGIC)


def test_idx_truncated(tmp_path: Path) -> None:
    raw = _idx_bytes(IMAGES_MAGIC, np.zeros((10, 28, 28)))
    path = tmp_path / "imgs"
    path.write_bytes(raw[:-100])
    with pytest.raises(KgnetError, match=r"imgs: truncated: the header promises 10 x 28 x 28 = 7840 bytes "
                                         r"of images, the file holds 7740"):
        read_idx(path, IMAGES_MAGIC)
    gz = tmp_path / "imgs.gz"
    gz.write_bytes(gzip.compress(raw)[:-40])  # a download cut short
    with pytest.raises(KgnetError, match=r"imgs\.gz: cannot decompress .*truncated or corrupt"):
        read_idx(gz, IMAGES_MAGIC)
    path.write_bytes(raw[:6])
    with pytest.raises(KgnetError, match="truncated IDX header"):
        read_idx(path, IMAGES_MAGIC)


def test_idx_image_label_count_mismatch(tmp_path: Path) -> None:
    _write_fashion(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(LABELS_MAGIC, np.zeros(9))))
    with pytest.raises(KgnetError, match=r"t10k-images-idx3-ubyte\.gz holds 10 images but .*"
                                         r"t10k-labels-idx1-ubyte\.gz holds 9 labels"):
        read_fashion_mnist(tmp_path, load_card("fashion_mnist").classes)


def test_fashion_mnist_missing_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DataMissingError) as err:
        build_datasets(DataConfig(root=str(tmp_path / "nowhere")))
    message = str(err.value)
    assert "Fashion-MNIST not found" in message and str(tmp_path / "nowhere") in message
    assert "apt-get install dataset-fashion-mnist" in message and "data.download: true" in message


# ---------------------------------------------------------------------------------------------
# CIFAR: small pickles in exactly the official format


def test_cifar10_official_format(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    arrays, card = read_arrays("cifar10", str(tmp_path))
    assert arrays.class_names == card.classes and arrays.class_names[0] == "airplane"
    assert arrays.train.images.shape == (30, 32, 32, 3) and arrays.test.images.shape == (10, 32, 32, 3)
    assert arrays.train.labels.tolist()[:6] == [1, 2, 3, 4, 5, 6]  # data_batch_1 comes first
    row = cifar_rows(6, 1)[0]  # data_batch_1's first image
    np.testing.assert_array_equal(arrays.train.images[0], row.reshape(3, 32, 32).transpose(1, 2, 0))
    # a known pixel in a known channel of the CHW row lands at [h, w, c] ...
    test = arrays.test.images
    assert test[0, 3, 7, 1] == 200 and test[0, 31, 0, 2] == 90 and int(test[0].sum()) == 290


def test_cifar_pixel_layout_survives_to_the_model_input(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    data = build_datasets(DataConfig(name="cifar10", root=str(tmp_path), val_fraction=0.2), seed=0)
    image, label = data.test[0]  # ... and at [c, h, w] of the normalised tensor
    mean, std = PIXEL_STATS["cifar10"].mean, PIXEL_STATS["cifar10"].std
    assert image.shape == (3, 32, 32) and label == 0 and data.in_chans == 3
    assert image[1, 3, 7].item() == pytest.approx((200 / 255 - mean[1]) / std[1], abs=1e-5)
    assert image[2, 31, 0].item() == pytest.approx((90 / 255 - mean[2]) / std[2], abs=1e-5)
    assert image[0, 3, 7].item() == pytest.approx(-mean[0] / std[0], abs=1e-5)
    assert len(data.train) + len(data.val) == 30 and len(data.test) == 10
    counts = np.bincount(np.concatenate([data.train.labels.numpy(), data.val.labels.numpy()]), minlength=10)
    assert set(data.val.labels.tolist()) == {c for c in range(10) if counts[c] >= 2}  # stratified
    assert data.card.name == "cifar10" and data.wnids == load_card("cifar10").wnids


def test_cifar_root_may_be_the_batch_folder(tmp_path: Path) -> None:
    folder = write_cifar10(tmp_path)
    arrays, _ = read_arrays("cifar10", str(folder))
    assert arrays.folder == folder


def test_cifar100_official_format(tmp_path: Path) -> None:
    write_cifar100(tmp_path)
    arrays, card = read_arrays("cifar100", str(tmp_path))
    assert arrays.class_names == card.classes and len(arrays.class_names) == 100
    assert arrays.train.images.shape == (200, 32, 32, 3) and arrays.train.labels.tolist()[:3] == [0, 1, 2]
    expected = cifar_rows(100, 4)[5].reshape(3, 32, 32).transpose(1, 2, 0)
    np.testing.assert_array_equal(arrays.test.images[5], expected)
    data = build_datasets(DataConfig(name="cifar100", root=str(tmp_path), held_out_classes=["whale"]), seed=1)
    whale = card.classes.index("whale")
    assert data.unseen_classes == [whale] and whale not in data.train.labels.tolist()


def test_cifar_label_names_must_match_the_card(tmp_path: Path) -> None:
    folder = write_cifar10(tmp_path)
    names = [n.encode() for n in load_card("cifar10").classes]
    names[3] = b"kitty"
    dump_cifar(folder / "batches.meta", {b"label_names": names})
    with pytest.raises(KgnetError, match=r"batches\.meta: label names differ from the card .*cifar10\.yaml: "
                                         r"label 3: 'kitty' \(card: 'cat'\)"):
        read_cifar(folder, CIFAR10, load_card("cifar10").classes, load_card("cifar10").path)


def test_cifar_refuses_pickles_that_run_code(tmp_path: Path) -> None:
    folder = write_cifar10(tmp_path)

    class Exploit:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": Exploit()}, f)
    with pytest.raises(KgnetError, match=r"test_batch: not a CIFAR python batch .*"
                                         r"refusing to load builtins\.print"):
        read_cifar(folder, CIFAR10, load_card("cifar10").classes)


def test_cifar_corrupt_batch(tmp_path: Path) -> None:
    folder = write_cifar10(tmp_path)
    good = (folder / "data_batch_2").read_bytes()
    (folder / "data_batch_2").write_bytes(good[: len(good) // 2])
    with pytest.raises(KgnetError, match=r"data_batch_2: not a CIFAR python batch .*truncated or corrupt"):
        read_cifar(folder, CIFAR10, load_card("cifar10").classes)
    dump_cifar(folder / "data_batch_2", {b"data": cifar_rows(3, 0), b"labels": [1, 2]})
    with pytest.raises(KgnetError, match=r"data_batch_2: 3 images but 'labels' holds 2"):
        read_cifar(folder, CIFAR10, load_card("cifar10").classes)


@pytest.mark.parametrize(("name", "how"), [("cifar10", "torchvision.datasets.CIFAR10(root, download=True)"),
                                           ("cifar100", "torchvision.datasets.CIFAR100(root, download=True)")])
def test_cifar_missing_says_how_to_get_it(name: str, how: str) -> None:
    with pytest.raises(DataMissingError) as err:
        build_datasets(DataConfig(name=name))  # the session's empty cache: nothing there
    message = str(err.value)
    assert how in message and "data.download: true" in message and str(data_home(name)) in message


def test_cifar_repickled_by_python3(tmp_path: Path) -> None:
    """Copies re-saved by Python 3 (str keys, newer protocols) read the same."""
    folder = write_cifar100(tmp_path)
    rows = cifar_rows(100, 4)
    with open(folder / "test", "wb") as f:
        pickle.dump({"data": rows, "fine_labels": np.arange(100) % 100}, f, protocol=5)
    arrays = read_cifar(folder, CIFAR100, load_card("cifar100").classes)
    np.testing.assert_array_equal(arrays.test.images[7], rows[7].reshape(3, 32, 32).transpose(1, 2, 0))


def test_download_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """download=True hands fetching to torchvision, then kgnet's reader reads what it unpacked."""
    import torchvision.datasets

    calls = []

    class FakeCIFAR10:  # stands in for the network: unpacks the official layout into root
        def __init__(self, root: str, train: bool, download: bool) -> None:
            calls.append((root, train, download))
            if not (Path(root) / "cifar-10-batches-py").exists():
                write_cifar10(Path(root))

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    with pytest.raises(DataMissingError):
        read_arrays("cifar10", str(tmp_path))
    assert calls == []  # never implicitly
    arrays, _ = read_arrays("cifar10", str(tmp_path), download=True)
    assert calls == [(str(tmp_path), True, True), (str(tmp_path), False, True)] and len(arrays.train) == 30

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("Name or service not known")

    monkeypatch.setattr(torchvision.datasets, "CIFAR100", offline)
    with pytest.raises(DataMissingError, match=r"downloading cifar100 into .* failed \(OSError: Name or service"):
        read_arrays("cifar100", download=True)


# ---------------------------------------------------------------------------------------------
# Image folders: real JPEG/PNG files


def _save(path: Path, size: tuple[int, int], mode: str = "RGB", seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path)


def _write_tree(root: Path, folders: list[str], n_train: int = 3, n_test: int = 1, test_dir: str = "val") -> None:
    for i, folder in enumerate(folders):
        for j in range(n_train):
            suffix, mode = [(".JPEG", "RGB"), (".png", "RGBA"), (".jpg", "L")][j % 3]
            _save(root / "train" / folder / f"img{j}{suffix}", (40 + 7 * j, 30 + 5 * i), mode, seed=i * 10 + j)
        for j in range(n_test):
            _save(root / test_dir / folder / f"v{j}.png", (36, 36), "P" if j % 2 else "RGB", seed=100 + i)


def test_imagefolder_wnids_map_to_the_imagenette_card(tmp_path: Path) -> None:
    card = load_card("imagenette")
    _write_tree(tmp_path, list(reversed(card.wnids)))
    (tmp_path / "train" / card.wnids[0] / "notes.txt").write_text("not an image")
    tree = scan_image_folder(tmp_path)
    assert tree.card is not None and tree.card.name == "imagenette"
    assert tree.class_names == card.classes and tree.wnids == card.wnids == tree.folders
    assert len(tree.train_files) == 30 and len(tree.test_files) == 10
    assert tree.train_labels.tolist() == [i for i in range(10) for _ in range(3)]

    data = build_datasets(DataConfig(name="imagefolder", root=str(tmp_path), image_size=24,
                                     val_fraction=0.34, held_out_classes=["n03888257"]), seed=0)
    assert data.card.name == "imagenette" and data.class_names[9] == "parachute" and data.wnids == card.wnids
    assert data.unseen_classes == [9] and (len(data.train), len(data.val), len(data.test)) == (18, 9, 10)
    assert data.in_chans == 3 and data.image_size == 24
    data.set_epoch(0)
    images, labels = next(iter(DataLoader(data.train, batch_size=8, shuffle=True)))
    assert images.shape == (8, 3, 24, 24) and images.dtype == torch.float32 and 9 not in labels.tolist()
    assert data.val[0][0].shape == (3, 24, 24) and data.test[9][1] == 9


def test_imagefolder_imagenet_subset_gets_readable_names(tmp_path: Path) -> None:
    _write_tree(tmp_path, ["n02084071", "n01440764"], n_train=2)  # dog.n.01 is no ImageNet class
    tree = scan_image_folder(tmp_path)
    assert tree.card is None and tree.wnids == tree.class_names == ["n01440764", "n02084071"]
    _write_tree(tmp_path / "sub", ["n01443537", "n01440764"], n_train=2)
    tree = scan_image_folder(tmp_path / "sub")
    assert tree.card is None and tree.wnids == ["n01440764", "n01443537"]
    assert tree.class_names == [load_card("imagenet1k").classes[i] for i in (0, 1)]


def test_imagefolder_plain_folder_names(tmp_path: Path) -> None:
    _write_tree(tmp_path, ["dog", "cat", "bird"], test_dir="test")
    data = build_datasets(DataConfig(name="imagefolder", root=str(tmp_path), val_fraction=0.0), seed=0)
    assert data.class_names == ["bird", "cat", "dog"] and data.wnids is None and data.card is None
    assert data.image_size == 64 and data.test[0][0].shape == (3, 64, 64) and len(data.val) == 0


def test_imagefolder_augmentation_is_reproducible(tmp_path: Path) -> None:
    _write_tree(tmp_path, ["a", "b"])
    train = build_datasets(DataConfig(name="imagefolder", root=str(tmp_path), image_size=16, val_fraction=0.0),
                           seed=5).train
    train.set_epoch(1)
    first = train[2][0]
    assert torch.equal(first, train[2][0])
    train.set_epoch(2)
    assert not torch.equal(first, train[2][0])


def test_imagefolder_corrupt_image_named(tmp_path: Path) -> None:
    _write_tree(tmp_path, ["cat", "dog"])
    bad = tmp_path / "train" / "dog" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    good = (tmp_path / "train" / "cat" / "img1.png").read_bytes()
    cut = tmp_path / "train" / "cat" / "cut.png"
    cut.write_bytes(good[: len(good) // 2])  # a copy interrupted half way
    data = build_datasets(DataConfig(name="imagefolder", root=str(tmp_path), val_fraction=0.0), seed=0)
    index = data.train.files.index(bad)
    with pytest.raises(KgnetError, match=rf"{bad}: not a readable image"):
        data.train[index]
    with pytest.raises(KgnetError) as err:
        build_datasets(DataConfig(name="imagefolder", root=str(tmp_path)), verify=True)
    message = str(err.value)
    assert message.startswith("2 of 10 image files cannot be read")
    assert str(bad) in message and str(cut) in message
    verify_images([tmp_path / "val" / "cat" / "v0.png"])  # a good file passes


def test_imagefolder_layout_errors(tmp_path: Path) -> None:
    with pytest.raises(DataMissingError, match="image folder .* not found"):
        build_datasets(DataConfig(name="imagefolder", root=str(tmp_path / "absent")))
    with pytest.raises(KgnetError, match="data.root must name the image folder"):
        build_datasets(DataConfig(name="imagefolder"))
    _write_tree(tmp_path, ["cat", "dog"])
    _save(tmp_path / "val" / "fox" / "x.png", (8, 8))
    with pytest.raises(KgnetError, match=r"class folder\(s\) fox have no counterpart"):
        scan_image_folder(tmp_path)
    (tmp_path / "val" / "fox" / "x.png").unlink()
    (tmp_path / "val" / "fox").rmdir()
    (tmp_path / "train" / "emu").mkdir()
    with pytest.raises(KgnetError, match=r"class folder\(s\) without images .*: emu"):
        scan_image_folder(tmp_path)


def test_imagefolder_without_test_split(tmp_path: Path) -> None:
    _save(tmp_path / "train" / "cat" / "a.png", (8, 8))
    with pytest.raises(KgnetError, match=r"no val/ or test/ folder; expected root/train/<class>"):
        scan_image_folder(tmp_path)


# ---------------------------------------------------------------------------------------------
# Splits


LABELS = np.repeat(np.arange(5), [50, 40, 30, 20, 3])
NAMES = ["T-shirt/top", "Trouser", "Sandal", "Sneaker", "Bag"]


def test_split_is_stratified_disjoint_and_seeded() -> None:
    train, val = stratified_split(LABELS, 0.1, seed=0)
    assert np.bincount(LABELS[val]).tolist() == [5, 4, 3, 2, 1]
    assert not set(train) & set(val) and sorted([*train, *val]) == list(range(len(LABELS)))
    again = stratified_split(LABELS, 0.1, seed=0)
    assert np.array_equal(train, again[0]) and np.array_equal(val, again[1])
    assert not np.array_equal(val, stratified_split(LABELS, 0.1, seed=1)[1])
    assert len(stratified_split(LABELS, 0.0, seed=0)[1]) == 0


def test_samples_per_class_exact_nested_and_short_classes_warn(caplog: pytest.LogCaptureFixture) -> None:
    train, _ = stratified_split(LABELS, 0.1, seed=0)
    with caplog.at_level(logging.WARNING):
        five = subsample_per_class(LABELS, train, 5, seed=0, class_names=NAMES)
    assert np.bincount(LABELS[five]).tolist() == [5, 5, 5, 5, 2]  # "Bag" has only 2 training images
    assert "Bag (2)" in caplog.text
    three = subsample_per_class(LABELS, train, 3, seed=0)
    assert set(three) <= set(five) <= set(train)  # low-data subsets are nested
    assert not np.array_equal(three, subsample_per_class(LABELS, train, 3, seed=1))


def test_held_out_classes_leave_train_and_val_only() -> None:
    test_labels = np.repeat(np.arange(5), 4)
    split = make_splits(LABELS, test_labels, NAMES, val_fraction=0.2, samples_per_class=4,
                        held_out_classes=["Sandal"], seed=0)
    assert split.unseen_classes == [2] and split.seen_classes == [0, 1, 3, 4]
    assert 2 not in LABELS[split.train] and 2 not in LABELS[split.val]
    assert 2 in test_labels[split.test] and len(split.test) == 20
    assert np.bincount(LABELS[split.train], minlength=5).tolist() == [4, 4, 0, 4, 2]
    # holding a class out leaves the other classes' split unchanged
    plain = make_splits(LABELS, test_labels, NAMES, val_fraction=0.2, samples_per_class=4, seed=0)
    assert np.array_equal(plain.train[LABELS[plain.train] != 2], split.train)
    assert np.array_equal(plain.val[LABELS[plain.val] != 2], split.val)


def test_unknown_held_out_class_suggests_close_names() -> None:
    with pytest.raises(KgnetError, match=r"data\.held_out_classes: unknown class 'Sandals' "
                                         r"\(did you mean 'Sandal'\?\); 'sneaker' \(did you mean 'Sneaker'\?\)"):
        make_splits(LABELS, LABELS, NAMES, held_out_classes=["Sandals", "sneaker"])
    with pytest.raises(KgnetError, match="holds out every class"):
        make_splits(LABELS, LABELS, NAMES, held_out_classes=NAMES)


# ---------------------------------------------------------------------------------------------
# Augmentation


def _reference_crop_flip(image: torch.Tensor, top: int, left: int, flip: bool, pad: int) -> torch.Tensor:
    h, w = image.shape[-2:]
    out = torch.nn.functional.pad(image, (pad, pad, pad, pad))[:, top:top + h, left:left + w]
    return out.flip(-1) if flip else out


def test_crop_flip_is_a_shifted_mirrored_copy() -> None:
    images = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8)
    out = crop_flip(images, torch.arange(64), key=7, augment=Augment(pad=2, flip=True))
    seen = set()
    for i in range(64):
        matches = [(t, l, f) for t in range(5) for l in range(5) for f in (False, True)
                   if torch.equal(out[i], _reference_crop_flip(images[i], t, l, f, 2))]
        assert matches, f"image {i} is no crop/flip of its input"
        seen.add(matches[0])
    assert len(seen) > 10  # the offsets and flips vary between images


def test_random_erasing_paints_one_rectangle_of_noise_per_chosen_image() -> None:
    images = torch.full((200, 1, 28, 28), 255, dtype=torch.uint8)  # noise is < 255 almost everywhere
    out = paint_noise(images, torch.arange(200), key=11, augment=Augment(erase=0.5))
    changed = out != images
    erased = changed.flatten(1).any(1)
    assert 0.35 < float(erased.float().mean()) < 0.65  # about half the images
    for i in erased.nonzero().flatten().tolist():
        rows, cols = changed[i, 0].any(1).nonzero().flatten(), changed[i, 0].any(0).nonzero().flatten()
        box = images[i, 0, rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        area = box.numel() / (28 * 28)
        assert 0.015 <= area <= 0.3, area  # 2-25% of the image (rounding of the sides aside)
        assert (out[i, 0, rows.min():rows.max() + 1, cols.min():cols.max() + 1] != 255).float().mean() > 0.9
    again = paint_noise(images[7:9], torch.tensor([7, 8]), key=11, augment=Augment(erase=0.5))
    assert torch.equal(again, out[7:9])  # an image's noise depends on its index, not its batch


def test_background_noise_paints_only_black_pixels() -> None:
    images = torch.zeros((8, 1, 10, 10), dtype=torch.uint8)
    images[:, :, 3:7, 3:7] = 200
    out = paint_noise(images, torch.arange(8), key=3, augment=Augment(background_noise=40))
    assert torch.equal(out[:, :, 3:7, 3:7], images[:, :, 3:7, 3:7])
    background = out[images == 0]
    assert int(background.max()) <= 40 and float((background > 0).float().mean()) > 0.9


def test_in_memory_items_match_batches_and_epochs_fix_augmentation() -> None:
    images = torch.randint(0, 256, (40, 1, 12, 12), dtype=torch.uint8)
    ds = InMemoryImages(images, torch.arange(40) % 4, stats=PIXEL_STATS["fashion_mnist"],
                        augment=AUGMENT["cifar10"], seed=3)
    ds.set_epoch(0)
    batch, labels = ds.batch([5, 17, 30])
    assert torch.equal(batch[1], ds[17][0]) and labels.tolist() == [1, 1, 2]
    loader_batch = next(iter(DataLoader(ds, batch_size=40)))[0]
    assert torch.equal(loader_batch[30], batch[2])  # DataLoader takes the batched path
    ds.set_epoch(1)
    assert not torch.equal(ds.batch(range(40))[0], loader_batch)
    plain = ds.without_augment()
    expected = (images[17].float() / 255 - 0.2860) / 0.3530
    assert torch.allclose(plain[17][0], expected, atol=1e-5)
