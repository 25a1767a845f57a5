"""kgnet's data: real on-disk formats in, seeded splits and fast torch Datasets out.

Readers parse the official formats themselves and say exactly what is wrong with a bad file:
Fashion-MNIST IDX files (`idx`), CIFAR-10/100 python pickles (`cifar`) and image-folder trees
such as Imagenette (`imagefolder`). Dataset cards (`cards`) say what kgnet knows about a
benchmark's classes before it reads an image; `preprocess` is the one definition of how an
image becomes model input (stored in every release). `splits` carves validation out of the
training split (the test split is never used for selection), subsamples for the low-data
regime and holds classes out for zero-shot evaluation. `build_datasets` puts it together::

    from kgnet.config import DataConfig
    from kgnet.data import build_datasets

    data = build_datasets(DataConfig(name="fashion_mnist", samples_per_class=100), seed=0)
    loader = torch.utils.data.DataLoader(data.train, batch_size=128, shuffle=True)
    for epoch in range(epochs):
        data.set_epoch(epoch)  # reproducible augmentation, also across resumes and ranks
        for images, labels in loader: ...

Nothing is downloaded unless `download=True` is passed. The names below load on first use, so
`from kgnet.data.cards import load_card` (the knowledge CLI) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "kgnet.data.arrays": ["ArrayDataset", "ImageArrays"],
    "kgnet.data.augment": ["Augment"],
    "kgnet.data.builder": ["AUGMENT", "DataBundle", "build_datasets", "read_arrays"],
    "kgnet.data.cards": ["DatasetCard", "card_names", "load_card"],
    "kgnet.data.cifar": ["CIFAR10", "CIFAR100", "find_cifar", "read_cifar", "read_cifar_batch"],
    "kgnet.data.download": ["download"],
    "kgnet.data.idx": ["find_fashion_mnist", "read_fashion_mnist", "read_idx"],
    "kgnet.data.imagefolder": ["ImageFiles", "ImageFolderTree", "scan_image_folder", "verify_images"],
    "kgnet.data.in_memory": ["InMemoryImages"],
    "kgnet.data.preprocess": ["IMAGEFOLDER_DEFAULT_SIZE", "Preprocessing", "read_image", "resolve_preprocessing"],
    "kgnet.data.splits": ["SplitIndices", "make_splits", "stratified_split", "subsample_per_class"],
    "kgnet.data.stats": ["PIXEL_STATS", "PixelStats"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'kgnet.data' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
