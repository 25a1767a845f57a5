"""Fetching a data set for users with internet, only ever when they ask for it.

torchvision's dataset classes know the official URLs and checksums, so they do the fetching
and unpacking into kgnet's cache (or the folder the user named); kgnet's own readers then
read the files, exactly as they read a copy that was already on disk. Nothing here runs unless
`download=True` was passed: offline machines and CI never touch the network.
"""

from __future__ import annotations

import logging
from pathlib import Path

from kgnet.errors import DataMissingError, KgnetError

log = logging.getLogger(__name__)

#: The torchvision dataset class that fetches each downloadable data set.
TORCHVISION_CLASSES = {"fashion_mnist": "FashionMNIST", "cifar10": "CIFAR10", "cifar100": "CIFAR100"}


def download(name: str, folder: str | Path) -> Path:
    """Download and unpack data set `name` into `folder` with torchvision.

    Args:
        name: ``fashion_mnist``, ``cifar10`` or ``cifar100``.
        folder: Where to put it; the readers find it there afterwards (Fashion-MNIST lands in
            ``folder/FashionMNIST/raw``, CIFAR in ``folder/cifar-10-batches-py`` or
            ``folder/cifar-100-python``).

    Returns:
        `folder`.

    Raises:
        KgnetError: `name` cannot be downloaded this way.
        DataMissingError: The download failed (no internet, server error, bad checksum).
    """
    if name not in TORCHVISION_CLASSES:
        raise KgnetError(f"download is available for {', '.join(TORCHVISION_CLASSES)}, not {name!r}; "
                         "download and unpack the files yourself and set data.root")
    # deferred: torchvision takes ~8 s to import; only a download needs it
    import torchvision.datasets

    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    cls = getattr(torchvision.datasets, TORCHVISION_CLASSES[name])
    log.info("downloading %s into %s with torchvision.datasets.%s", name, folder, cls.__name__)
    try:
        cls(root=str(folder), train=True, download=True)
        cls(root=str(folder), train=False, download=True)
    except Exception as err:  # URLError, HTTPError, RuntimeError (checksum), OSError, ...
        raise DataMissingError(f"downloading {name} into {folder} failed ({type(err).__name__}: {err}); "
                               "check the internet connection, or get the files another way and "
                               "set data.root") from None
    return folder
