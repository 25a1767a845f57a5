"""kgnet's data: real on-disk formats in, seeded splits and fast torch Datasets out.

Readers parse the official formats themselves and say exactly what is wrong with a bad file:
Fashion-MNIST IDX files (`idx`), CIFAR-10/100 python pickles (`cifar`) and image-folder trees
such as Imagenette (`imagefolder`). `splits` carves validation out of the training split (the
test split is never used for selection), subsamples for the low-data regime and holds classes
out for zero-shot evaluation. `build_datasets` puts it together::

    from kgnet.config import DataConfig
    from kgnet.data import build_datasets

    data = build_datasets(DataConfig(name="fashion_mnist", samples_per_class=100), seed=0)
    loader = torch.utils.data.DataLoader(data.train, batch_size=128, shuffle=True)
    for epoch in range(epochs):
        data.set_epoch(epoch)  # reproducible augmentation, also across resumes and ranks
        for images, labels in loader: ...

Nothing is downloaded unless `download=True` is passed.
"""

from kgnet.data.arrays import ArrayDataset, ImageArrays
from kgnet.data.augment import Augment
from kgnet.data.builder import AUGMENT, IMAGEFOLDER_DEFAULT_SIZE, DataBundle, build_datasets, read_arrays
from kgnet.data.cifar import CIFAR10, CIFAR100, find_cifar, read_cifar, read_cifar_batch
from kgnet.data.download import download
from kgnet.data.idx import find_fashion_mnist, read_fashion_mnist, read_idx
from kgnet.data.imagefolder import ImageFiles, ImageFolderTree, scan_image_folder, verify_images
from kgnet.data.in_memory import InMemoryImages
from kgnet.data.splits import SplitIndices, make_splits, stratified_split, subsample_per_class
from kgnet.data.stats import PIXEL_STATS, PixelStats

__all__ = [
    "AUGMENT", "ArrayDataset", "Augment", "CIFAR10", "CIFAR100", "DataBundle", "IMAGEFOLDER_DEFAULT_SIZE",
    "ImageArrays", "ImageFiles", "ImageFolderTree", "InMemoryImages", "PIXEL_STATS", "PixelStats",
    "SplitIndices", "build_datasets", "download", "find_cifar", "find_fashion_mnist", "make_splits",
    "read_arrays", "read_cifar", "read_cifar_batch", "read_fashion_mnist", "read_idx",
    "scan_image_folder", "stratified_split", "subsample_per_class", "verify_images",
]
