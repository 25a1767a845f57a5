"""Dataset cards: what kgnet knows about a benchmark dataset before it reads a single image.

A card (``datasets/<name>.yaml``) gives the class names in label order, a curated WordNet 3.0
wnid per class (checked by hand against lemma and gloss; ambiguous names carry a note), the
shipped ontology exported from those wnids, the on-disk format and where the raw files are
found or downloaded from. Loaders, the WordNet exporter and class mapping all read the same
card, so a class is named and bound to its knowledge in exactly one place.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kgnet.errors import KgnetError
from kgnet.paths import shipped_dir

_WNID = re.compile(r"^n\d{8}$")
_REQUIRED = ("name", "title", "description", "format", "source", "ontology", "classes")
_OPTIONAL = ("urls", "local_paths")
_CLASS_KEYS = ("name", "wnid", "note")


@dataclass(frozen=True)
class DatasetCard:
    """One dataset as kgnet sees it.

    Attributes:
        name: Card name, e.g. ``"cifar100"``.
        title: Human name, e.g. ``"CIFAR-100"``.
        classes: Class names in label order (index i is label i).
        wnids: The WordNet 3.0 noun synset of each class, same order. For ImageFolder datasets
            (Imagenette, ImageWoof, ImageNet) these are also the class folder names.
        ontology: Absolute path of the ontology exported for these classes (may not exist for
            a user's card until exported).
        description: What the dataset is.
        format: On-disk format a loader reads: ``fashion-mnist-idx``, ``cifar10-python``,
            ``cifar100-python`` or ``imagefolder``.
        source: Where the raw files come from and how to obtain them.
        urls: Download addresses, for users with internet.
        local_paths: Folders where the files may already be on this machine.
        notes: Curation notes by class name: why an ambiguous name got its wnid.
        path: The card file.
    """

    name: str
    title: str
    classes: list[str]
    wnids: list[str]
    ontology: Path
    description: str
    format: str
    source: str
    urls: list[str] = field(default_factory=list)
    local_paths: list[Path] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    path: Path | None = None

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)


def card_names() -> list[str]:
    """Names of the shipped dataset cards, sorted."""
    return sorted(p.stem for p in shipped_dir("datasets").glob("*.yaml"))


def _card_path(name_or_path: str | Path) -> Path:
    """The card file for a shipped card name or a path to a YAML file."""
    text = str(name_or_path)
    shipped = shipped_dir("datasets") / f"{text}.yaml"
    if "/" not in text and "\\" not in text and not text.endswith((".yaml", ".yml")) and shipped.is_file():
        return shipped
    path = Path(name_or_path).expanduser()
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    names = card_names()
    close = difflib.get_close_matches(text, names, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise KgnetError(
        f"unknown dataset card {text!r}.{hint} Shipped cards: {', '.join(names)}; "
        "or give the path of a card file (.yaml)"
    )


def _fail(path: Path, message: str) -> KgnetError:
    return KgnetError(f"dataset card {path}: {message}")


def _check_keys(path: Path, where: str, keys: object, allowed: tuple[str, ...]) -> None:
    for key in keys:  # type: ignore[union-attr]
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise _fail(path, f"unknown key {key!r}{where}{hint}; known keys: {', '.join(allowed)}")


def load_card(name_or_path: str | Path) -> DatasetCard:
    """Read a dataset card by shipped name (``"cifar10"``) or from a YAML file.

    The ``ontology`` field is resolved against the card's own folder when the file is there,
    else against the shipped ``kg/`` folder.

    Args:
        name_or_path: A name from `card_names()` or the path of a card file.

    Returns:
        The card.

    Raises:
        KgnetError: Unknown name, unreadable YAML, unknown or missing keys, malformed or
            repeated wnids.
    """
    path = _card_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise _fail(path, f"not valid YAML{line}: {getattr(err, 'problem', err)}") from None
    if not isinstance(data, dict):
        raise _fail(path, "expected a mapping of keys (name, classes, ...)")
    _check_keys(path, "", data, _REQUIRED + _OPTIONAL)
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        raise _fail(path, f"missing key(s) {', '.join(missing)}")

    entries = data["classes"]
    if not isinstance(entries, list) or not entries:
        raise _fail(path, "'classes' must be a non-empty list of {name, wnid} entries")
    classes: list[str] = []
    wnids: list[str] = []
    notes: dict[str, str] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "name" not in entry or "wnid" not in entry:
            raise _fail(path, f"class {i}: expected {{name: ..., wnid: ...}}, got {entry!r}")
        _check_keys(path, f" in class {i}", entry, _CLASS_KEYS)
        name, wnid = str(entry["name"]), str(entry["wnid"])
        if not _WNID.match(wnid):
            raise _fail(path, f"class {i} ({name!r}): {wnid!r} is not a noun wnid like n02084071")
        classes.append(name)
        wnids.append(wnid)
        if entry.get("note"):
            notes[name] = str(entry["note"]).strip()
    names_seen = sorted({c for c in classes if classes.count(c) > 1})
    if names_seen:
        raise _fail(path, f"class name(s) used more than once: {', '.join(names_seen)}; names must be unique")
    repeated = sorted({w for w in wnids if wnids.count(w) > 1})
    if repeated:
        raise _fail(path, f"wnid(s) used by more than one class: {', '.join(repeated)}")

    ontology = Path(str(data["ontology"])).expanduser()
    if not ontology.is_absolute():
        beside = path.parent / ontology
        ontology = beside if beside.is_file() else shipped_dir("kg") / ontology
    return DatasetCard(
        name=str(data["name"]),
        title=str(data["title"]),
        classes=classes,
        wnids=wnids,
        ontology=ontology.resolve(),
        description=str(data["description"]).strip(),
        format=str(data["format"]),
        source=str(data["source"]).strip(),
        urls=[str(u) for u in data.get("urls") or []],
        local_paths=[Path(str(p)) for p in data.get("local_paths") or []],
        notes=notes,
        path=path.resolve(),
    )
