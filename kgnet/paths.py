"""Where kgnet finds its shipped files and keeps its caches.

Shipped ontologies (`kg/`) and dataset cards (`datasets/`) sit at the repository root in a
source checkout and inside the package (`kgnet/_shipped/`) in an installed wheel; both layouts
resolve here so callers never care which one they run from. A shipped ontology also has a
name a user can type anywhere (`fashion_mnist`, `kgnet:fashion_mnist_garments`):
`resolve_ontology` turns such a name, or a path, into the file to read.
"""

from __future__ import annotations

import os
from pathlib import Path

from kgnet.errors import KgnetError, OntologyError

__all__ = ["SHIPPED_PREFIX", "cache_dir", "resolve_ontology", "shipped_dir", "shipped_ontologies"]

_PACKAGE_DIR = Path(__file__).resolve().parent

SHIPPED_PREFIX = "kgnet:"
"""`kgnet:<name>` names a shipped ontology explicitly, whatever files the current folder holds."""

#: Files of the shipped kg/ folder that are not ontologies.
_NOT_ONTOLOGIES = {".md", ".txt", ".rst"}


def shipped_dir(name: str) -> Path:
    """The folder of shipped files `name` ("kg" or "datasets"), wheel or source checkout."""
    for candidate in (_PACKAGE_DIR / "_shipped" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"kgnet's shipped folder {name!r} is missing from this installation")


def cache_dir() -> Path:
    """Root of kgnet's on-disk caches: $KGNET_CACHE, else $XDG_CACHE_HOME/kgnet, else ~/.cache/kgnet."""
    root = os.environ.get("KGNET_CACHE")
    if root:
        path, name = Path(root), "KGNET_CACHE"
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        path, name = (Path(xdg) if xdg else Path.home() / ".cache") / "kgnet", "kgnet's cache folder"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as err:
        raise KgnetError(f"{name} {path}: cannot be a folder ({getattr(err, 'strerror', None) or err}); point "
                         "KGNET_CACHE at a folder kgnet may write in") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise KgnetError(f"{name} {path}: not a folder kgnet may write in; point KGNET_CACHE at one that is")
    return path


def _ontology_stem(path: Path) -> str:
    """"fashion_mnist.ttl" / "wordnet.nt.gz" -> "fashion_mnist" / "wordnet"."""
    name = path.name[: -len(".gz")] if path.name.lower().endswith(".gz") else path.name
    return Path(name).stem


def _shipped_files() -> dict[str, Path]:
    """Name -> file of every ontology shipped in kg/ (none when the folder is missing)."""
    try:
        folder = shipped_dir("kg")
    except FileNotFoundError:
        return {}
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.startswith(".") and path.suffix.lower() not in _NOT_ONTOLOGIES:
            files.setdefault(_ontology_stem(path), path)
    return files


def shipped_ontologies() -> list[str]:
    """The names of the shipped ontologies (kg/<name>.ttl), sorted: what `resolve_ontology` accepts."""
    return sorted(_shipped_files())


def _is_bare_name(text: str) -> bool:
    """A name, not a path: no folder separator, no suffix, no `~`."""
    separators = {"/", os.sep} | ({os.altsep} if os.altsep else set())
    return bool(text) and not any(s in text for s in separators) and not text.startswith("~") \
        and Path(text).suffix == ""


def ontology_setting(path: str | os.PathLike) -> str:
    """How a config names ontology file `path`: `kgnet:<name>` for a shipped one (the same on
    every installation, as `resolve_ontology` reads it back), else its absolute path."""
    file = Path(path).expanduser().resolve()
    for name, shipped in _shipped_files().items():
        if shipped.resolve() == file:
            return SHIPPED_PREFIX + name
    return str(file)


def resolve_ontology(value: str | os.PathLike, what: str = "") -> Path:
    """The ontology file that `value` names: a path, or the name of a shipped ontology.

    - an existing path is returned as it is (a file in the current folder wins over a shipped
      ontology of the same name);
    - `kgnet:<name>` is always the shipped ontology `<name>`;
    - a bare name (no folder, no suffix) such as `fashion_mnist_garments` that is no existing
      file is the shipped ontology of that name;
    - any other path is returned as it is, for the caller's "no such file" check
      (`kgnet.checks.input_file`), unless its file name is that of a shipped ontology, which
      the message then suggests.

    Args:
        value: what the user wrote (a CLI argument, `knowledge.ontology`).
        what: the flag or setting it came from, for the message (e.g. "knowledge.ontology").

    Raises:
        OntologyError: an unknown shipped name (listing the shipped ones), or a missing file
            whose name is a shipped ontology's.
    """
    text = os.fspath(value)
    label = f"{what} {text}" if what else text
    shipped = _shipped_files()
    names = ", ".join(sorted(shipped)) or "(none: this installation ships no kg/ folder)"
    if text.startswith(SHIPPED_PREFIX) and not Path(text).expanduser().exists():
        name = text[len(SHIPPED_PREFIX):]
        if name in shipped:
            return shipped[name]
        raise OntologyError(f"{label}: kgnet ships no ontology named {name!r}; shipped: {names} "
                            "(python -m kgnet.kg list)")
    path = Path(text).expanduser()
    if path.exists():
        return path
    if _is_bare_name(text):
        if text in shipped:
            return shipped[text]
        raise OntologyError(
            f"{label}: no such file, and kgnet ships no ontology of that name; give the path of an RDF file "
            f"(e.g. my_ontology.ttl) or one of the shipped ontologies: {names} (python -m kgnet.kg list)"
        )
    stem = _ontology_stem(path)
    if stem in shipped:
        raise OntologyError(
            f"{label}: no such file; kgnet ships an ontology of that name: give {stem} (or {SHIPPED_PREFIX}{stem}) "
            "to use it from any folder"
        )
    return path
