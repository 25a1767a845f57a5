"""Reading RDF files into one rdflib graph, offline.

Any serialisation rdflib reads is accepted (Turtle, N-Triples, N3, RDF/XML and .owl, N-Quads,
TriG, JSON-LD, TriX, and `.gz` of each); the format comes from the suffix or is given. Nothing
is ever fetched: `owl:imports` are reported, and satisfied only by local files the user lists;
a JSON-LD document that points at a remote `@context` is refused rather than dereferenced.
Every way a file can be unreadable becomes one `OntologyError` naming the file and line.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import re
import xml.sax
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import rdflib
from rdflib import OWL, RDF, Graph, URIRef

from kgnet.errors import OntologyError

log = logging.getLogger(__name__)

SUFFIX_FORMATS: dict[str, str] = {
    ".ttl": "turtle",
    ".turtle": "turtle",
    ".n3": "n3",
    ".nt": "nt",
    ".ntriples": "nt",
    ".nq": "nquads",
    ".nquads": "nquads",
    ".trig": "trig",
    ".rdf": "xml",
    ".owl": "xml",
    ".xml": "xml",
    ".rdfxml": "xml",
    ".jsonld": "json-ld",
    ".json-ld": "json-ld",
    ".json": "json-ld",
    ".trix": "trix",
}
"""File suffix -> rdflib parser name. `.owl` is read as RDF/XML, the OWL exchange syntax."""

FORMAT_ALIASES: dict[str, str] = {
    "ttl": "turtle",
    "ntriples": "nt",
    "n-triples": "nt",
    "nquads": "nquads",
    "n-quads": "nquads",
    "rdfxml": "xml",
    "rdf/xml": "xml",
    "rdf+xml": "xml",
    "owl": "xml",
    "application/rdf+xml": "xml",
    "jsonld": "json-ld",
    "json": "json-ld",
}
_QUAD_FORMATS = {"nquads", "trig", "trix"}
_KNOWN_FORMATS = set(SUFFIX_FORMATS.values())


@dataclass
class LoadedOntology:
    """The merged triples of an ontology file and the local files that satisfy its imports."""

    graph: Graph
    files: list[Path]
    imports: list[str] = field(default_factory=list)
    """Every `owl:imports` IRI declared in the loaded files, sorted."""
    unresolved_imports: list[str] = field(default_factory=list)
    """Declared imports that no listed local file provides (not fetched; reported)."""
    warnings: list[str] = field(default_factory=list)


def detect_format(path: Path, fmt: str | None = None) -> str:
    """rdflib's parser name for `path`: the explicit `fmt` if given, else from the suffix."""
    if fmt:
        name = FORMAT_ALIASES.get(fmt.lower(), fmt.lower())
        if name not in _KNOWN_FORMATS and name not in {"hext"}:
            known = ", ".join(sorted(_KNOWN_FORMATS | set(FORMAT_ALIASES)))
            raise OntologyError(f"{path}: unknown RDF format {fmt!r}; use one of: {known}")
        return name
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    suffix = suffixes[-1] if suffixes else ""
    if suffix not in SUFFIX_FORMATS:
        known = " ".join(sorted(SUFFIX_FORMATS))
        raise OntologyError(
            f"{path}: cannot tell the RDF format from the suffix {suffix or '(none)'!r}; "
            f"rename the file to one of {known} (optionally + .gz) or pass --format"
        )
    return SUFFIX_FORMATS[suffix]


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise OntologyError(f"{path}: no such file")
    if path.is_dir():
        raise OntologyError(f"{path}: is a folder, not an RDF file")
    data = path.read_bytes()
    if path.suffix.lower() == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as err:
            raise OntologyError(f"{path}: not a readable gzip file ({err})") from None
    return data


def _remote_jsonld_contexts(node: object) -> list[str]:
    """IRIs of `@context`/`@import` references in a JSON-LD document (rdflib would fetch them)."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("@context", "@import"):
                values = value if isinstance(value, list) else [value]
                found += [v for v in values if isinstance(v, str)]
            found += _remote_jsonld_contexts(value)
    elif isinstance(node, list):
        for item in node:
            found += _remote_jsonld_contexts(item)
    return found


def _line_format_error_line(text: str, fmt: str) -> int | None:
    """The first bad line of a line-based file (N-Triples, N-Quads), by bisecting on prefixes."""
    lines = text.splitlines()

    def parses(count: int) -> bool:
        try:
            rdflib.Dataset().parse(data="\n".join(lines[:count]), format=fmt)
        except Exception:  # noqa: BLE001 - any failure means the prefix holds the bad line
            return False
        return True

    good, bad = 0, len(lines)
    if parses(bad):
        return None
    while bad - good > 1:
        mid = (good + bad) // 2
        good, bad = (mid, bad) if parses(mid) else (good, mid)
    return bad


def _describe_parse_error(path: Path, fmt: str, text: str, err: Exception) -> str:
    """Turn whatever rdflib raised into 'FILE line N: what is wrong; what to do'."""
    line: int | None = None
    detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if isinstance(err, xml.sax.SAXParseException):
        line, detail = err.getLineNumber(), err.getMessage()
        if detail == "no element found":
            detail = "the XML ends before its root element is closed (truncated file?)"
    elif isinstance(err, json.JSONDecodeError):
        line, detail = err.lineno, err.msg
    elif type(err).__name__ == "BadSyntax":
        match = re.search(r"at line (\d+)", str(err))
        line = int(match.group(1)) if match else None
        why = getattr(err, "_why", None) or detail
        detail = f"bad {fmt} syntax ({why})"
    elif fmt in ("nt", "nquads"):
        line = _line_format_error_line(text, fmt)
        detail = f"not a valid {fmt} statement ({detail})"
    where = f"{path} line {line}" if line else str(path)
    return f"{where}: {detail}. Fix the file, or pass the right --format if the suffix is misleading"


def _sniff_non_rdf_owl(text: str) -> str | None:
    head = text.lstrip()[:2000]
    if head.startswith(("Prefix(", "Ontology(")):
        return "OWL functional syntax"
    if re.search(r"<Ontology\b[^>]*xmlns=\"http://www.w3.org/2002/07/owl#\"", head):
        return "OWL/XML"
    if head.startswith(("Prefix:", "Ontology:")):
        return "OWL Manchester syntax"
    return None


def parse_rdf_file(path: str | Path, fmt: str | None = None, into: Graph | None = None) -> Graph:
    """Parse one RDF file into `into` (a new graph by default), never touching the network.

    Raises:
        OntologyError: missing file, unknown format, empty, binary, malformed or truncated.
    """
    path = Path(path)
    name = detect_format(path, fmt)
    data = _read_bytes(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise OntologyError(
            f"{path}: not UTF-8 text (byte {err.start} is {data[err.start]:#04x}); "
            "is this a binary file? Give an RDF serialisation such as Turtle or RDF/XML"
        ) from None
    if not text.strip():
        raise OntologyError(f"{path}: the file is empty; an ontology needs at least one triple")
    if "\x00" in text:
        raise OntologyError(f"{path}: contains NUL bytes; this is a binary file, not RDF text")
    foreign = _sniff_non_rdf_owl(text)
    if foreign:
        raise OntologyError(
            f"{path}: this is {foreign}, which is not an RDF serialisation; export it as "
            "RDF/XML or Turtle (Protégé: File > Save as; ROBOT: `robot convert --format ttl`)"
        )
    if name == "json-ld":
        try:
            remote = _remote_jsonld_contexts(json.loads(text))
        except json.JSONDecodeError as err:
            raise OntologyError(_describe_parse_error(path, name, text, err)) from None
        if remote:
            raise OntologyError(
                f"{path}: JSON-LD refers to a remote @context {remote[0]!r}, which kgnet does not "
                "fetch; inline the context object in the file"
            )
    target = Graph() if into is None else into
    before = len(target)
    # Quad formats parse into a dataset whose union is then merged; triple formats go
    # straight into the target (on an error the caller discards it, so nothing half-read leaks).
    sink = rdflib.Dataset(default_union=True) if name in _QUAD_FORMATS else target
    try:
        # Parse from memory with a file:// base: relative IRIs resolve locally, nothing is fetched.
        sink.parse(
            source=io.BytesIO(text.encode("utf-8")),
            format=name,
            publicID=path.resolve().as_uri(),
        )
    except OntologyError:
        raise
    except Exception as err:  # noqa: BLE001 - rdflib's parsers raise many unrelated types
        raise OntologyError(_describe_parse_error(path, name, text, err)) from None
    if sink is not target:
        for prefix, ns in sink.namespaces():
            target.bind(prefix, ns, override=False)
        target.addN((s, p, o, target) for s, p, o in sink.triples((None, None, None)))
    if len(target) == before:
        raise OntologyError(f"{path}: parsed, but holds no triples; is it the right file?")
    return target


def load_ontology(
    path: str | Path,
    fmt: str | None = None,
    imports: Sequence[str | Path] = (),
) -> LoadedOntology:
    """Load an ontology and the local files that stand in for its `owl:imports`.

    Args:
        path: the ontology file.
        fmt: rdflib format name (or alias such as "ttl", "owl"); None = from the suffix.
        imports: local RDF files merged in; a declared import counts as satisfied when one of
            them declares that IRI as its `owl:Ontology` (or is named after it).

    Returns:
        The merged graph, the declared and unresolved imports, and warnings to show the user.
    """
    files = [Path(path)] + [Path(p) for p in imports]
    graph = Graph()
    provided: set[str] = set()
    for i, file in enumerate(files):
        before = set(graph.subjects(RDF.type, OWL.Ontology))
        parse_rdf_file(file, fmt if i == 0 else None, into=graph)
        if i > 0:
            provided |= {str(s) for s in set(graph.subjects(RDF.type, OWL.Ontology)) - before}
            provided.add(file.resolve().as_uri())
    declared = sorted({str(o) for o in graph.objects(None, OWL.imports) if isinstance(o, URIRef)})
    unresolved = [iri for iri in declared if iri not in provided and not _named_after(iri, files[1:])]
    warnings = [
        f"owl:imports {iri} was not fetched (kgnet never downloads); its terms are missing "
        "unless you pass a local copy with --imports FILE"
        for iri in unresolved
    ]
    return LoadedOntology(graph, files, declared, unresolved, warnings)


def _named_after(iri: str, files: Iterable[Path]) -> bool:
    """An import `.../pizza.owl` is satisfied by a local file called pizza.owl (or pizza.ttl)."""
    stem = iri.rstrip("/#").rsplit("/", 1)[-1].split(".")[0]
    return any(f.name.split(".")[0] == stem for f in files if stem)
