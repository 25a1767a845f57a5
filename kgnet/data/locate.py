"""Where a data set's files are looked for, and the error that says how to get them.

Every reader searches the same places in the same order (the folder the user named, else the
card's known local folders, else kgnet's cache), so "where did kgnet look?" has one answer,
and a missing data set is always one `DataMissingError` listing those places and what to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from kgnet.errors import DataMissingError
from kgnet.paths import cache_dir


def data_home(name: str) -> Path:
    """The folder kgnet downloads data set `name` into: ``<cache>/data/<name>``."""
    return cache_dir() / "data" / name


def search_folders(name: str, root: str | Path | None, local_paths: Sequence[Path] = ()) -> list[Path]:
    """The folders to search for data set `name`, in order.

    Args:
        name: Data set name (``fashion_mnist``, ``cifar10``, ...).
        root: The folder the user named; when given it is the only place searched, so a
            typo in it is reported instead of silently reading another copy.
        local_paths: Folders where the files may already be (the card's ``local_paths``).

    Returns:
        Candidate folders (they need not exist).
    """
    if root is not None:
        return [Path(root).expanduser()]
    return [*local_paths, data_home(name)]


def find_folder(folders: Sequence[Path], holds: Callable[[Path], Path | None]) -> Path | None:
    """The first match `holds(folder)` returns among `folders`, or None."""
    for folder in folders:
        if folder.is_dir():
            found = holds(folder)
            if found is not None:
                return found
    return None


def missing(title: str, what: str, folders: Sequence[Path], how: str) -> DataMissingError:
    """The error for a data set that is on none of `folders`.

    Args:
        title: Human name of the data set, e.g. ``"CIFAR-10"``.
        what: The files that were looked for.
        folders: Where they were looked for.
        how: How to get them.
    """
    where = ", ".join(str(f) for f in folders)
    return DataMissingError(f"{title} not found: looked for {what} in {where}. To get it: {how}")
