"""Reading RDF files into one rdflib graph, offline.

Any serialisation rdflib reads is accepted (Turtle, N-Triples, N3, RDF/XML and .owl, N-Quads,
TriG, JSON-LD, TriX, and `.gz` of each); the format comes from the suffix or is given. Nothing
is ever fetched: `owl:imports` are reported, and satisfied only by local files the user lists;
a JSON-LD document that points at a remote `@context` is refused rather than dereferenced.
Every way a file can be unreadable becomes one `KgnetError` (an `OntologyError` once the file
is read) naming the file, the line and column where there is one, and what to do.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import logging
import logging.handlers
import os
import re
import xml.parsers.expat
import xml.sax
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import rdflib
from rdflib import OWL, RDF, Graph, URIRef

from kgnet.checks import input_file
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


#: The largest ontology read, in MB after decompression (`$KGNET_MAX_ONTOLOGY_MB`): all of WordNet's
#: nouns as N-Triples are about 40 MB; a larger file (or a small .gz that unpacks to gigabytes)
#: is refused before it fills the memory.
MAX_ONTOLOGY_MB = 1024
#: The most prefix declarations a Turtle-family file may have: rdflib's parser slows down with the
#: square of their number (200,000 took minutes), and a real ontology has tens.
MAX_PREFIXES = 10_000
_PREFIX_LINE = re.compile(rb"^[ \t]*(@prefix|prefix)[ \t]", re.I | re.M)


def max_ontology_bytes() -> int:
    """The size cap of an ontology file (`MAX_ONTOLOGY_MB`, or `$KGNET_MAX_ONTOLOGY_MB`)."""
    text = os.environ.get("KGNET_MAX_ONTOLOGY_MB", "")
    try:
        return (int(text) if text.strip() else MAX_ONTOLOGY_MB) << 20
    except ValueError:
        raise OntologyError(f"KGNET_MAX_ONTOLOGY_MB={text!r}: give a whole number of megabytes") from None


def _read_bytes(path: Path) -> bytes:
    """The file's bytes (unpacked when it is .gz), refused past `max_ontology_bytes`."""
    cap = max_ontology_bytes()
    too_big = (f"{path}: more than {cap >> 20} MB{{}}, more than kgnet reads; raise KGNET_MAX_ONTOLOGY_MB if the "
               "ontology really is that large")
    path = input_file(path)
    if path.stat().st_size > cap:
        raise OntologyError(too_big.format(""))
    if path.suffix.lower() != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as stream:
            data = stream.read(cap + 1)
    except (OSError, EOFError, zlib.error) as err:
        raise OntologyError(f"{path}: not a readable gzip file ({err})") from None
    if len(data) > cap:
        raise OntologyError(too_big.format(" once unpacked"))
    return data


def _too_many_prefixes(path: Path, data: bytes) -> None:
    count = len(_PREFIX_LINE.findall(data))
    if count > MAX_PREFIXES:
        raise OntologyError(f"{path}: {count:,} prefix declarations, more than the {MAX_PREFIXES:,} kgnet reads "
                            "(rdflib's parser slows with the square of their number); declare each namespace once, "
                            "or convert the file to N-Triples")


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
            with _rdflib_log_captured():
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


def _position(text: str, index: int) -> tuple[int, int]:
    """1-based (line, column) of character `index` in `text`."""
    index = max(0, min(index, len(text)))
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


def _n3_parser_index(err: BaseException) -> int | None:
    """Where in the text rdflib's Turtle/N3/TriG parser was when it failed with a bare error.

    Truncated or mangled Turtle often makes rdflib's parser fail with an IndexError or an
    AssertionError instead of its own BadSyntax, which carries no position. The parser keeps
    the whole document in `argstr` and its position in `i`; the innermost parser frame of the
    traceback still holds both.
    """
    found = None
    tb = err.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        local = frame.f_locals
        if frame.f_globals.get("__name__", "").startswith("rdflib.plugins.parsers") and isinstance(
            local.get("argstr"), str
        ) and isinstance(local.get("i"), int):
            index = local["i"]
            if frame.f_code.co_name == "strconst" and found is not None:
                # The caller stepped past the opening quote (one or three characters) to call
                # strconst, whose `i` then runs into the string: point at the quote itself.
                delim = local.get("delim")
                index = found - (len(delim) if isinstance(delim, str) else 1)
            found = index
        tb = tb.tb_next
    return found


_RDFXML_LOCATION = re.compile(r"^[^\n]*?:(\d+):(\d+): (.*)$", re.S)
"""rdflib's RDF/XML and TriX handlers prefix their errors with 'systemId:line:column: '."""

_FORMAT_TITLES = {"turtle": "Turtle", "xml": "RDF/XML", "json-ld": "JSON-LD", "trix": "TriX"}
_TURTLE_FAMILY = {"turtle", "n3", "trig"}


def _sniff_format(text: str) -> str | None:
    """The serialisation a file's first characters give away (RDF/XML, TriX, JSON-LD, Turtle), if any."""
    head = re.sub(r"\A(\s*#[^\n]*\n)*\s*", "", text[:4000])
    if head.startswith(("<?xml", "<rdf:RDF", "<!DOCTYPE", "<TriX")):
        return "trix" if "<TriX" in head else "xml"
    if head.startswith(("{", "[")):
        return "json-ld"
    if re.match(r"(@prefix|@base|prefix\s|base\s)", head, re.I):
        return "turtle"
    return None


def _format_advice(path: Path, fmt: str, explicit: bool, text: str) -> str:
    """What to do after a parse error: fix the file, or read it with the format it really has."""
    actual = _sniff_format(text)
    if actual and actual != fmt and not (actual == "turtle" and fmt in _TURTLE_FAMILY):
        how = "drop --format or pass" if explicit else f"rename the file (its suffix {path.suffix!r} says {fmt}) or pass"
        return f"The file looks like {_FORMAT_TITLES[actual]}, not {fmt}: {how} --format {actual}"
    if explicit:
        return "Fix the file there, or check --format"
    return "Fix the file there, or pass the right --format if the suffix is misleading"


def _quoted_value_index(detail: str, text: str) -> int | None:
    """Where the value an error message quotes first appears in the file, if it does.

    Some errors come from building a term after the syntax was read (rdflib's Literal
    rejecting a language tag in JSON-LD or RDF/XML, say) and carry no position; the value
    they quote is usually written once, so its place in the file is the place to look.
    """
    for value in re.findall(r"'([^'\n]{2,})'", detail):
        found = text.find(value)
        if found >= 0:
            return found
    return None


def _describe_parse_error(path: Path, fmt: str, text: str, err: Exception, explicit: bool = False) -> str:
    """Turn whatever rdflib raised into 'FILE line L, column C: what is wrong. What to do.'"""
    line: int | None = None
    column: int | None = None
    index: int | None = None
    detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if isinstance(err, xml.sax.SAXParseException):
        line, column, detail = err.getLineNumber(), err.getColumnNumber() + 1, err.getMessage()
        if detail == "no element found":
            detail = "the XML ends before its root element is closed (truncated file?)"
    elif isinstance(err, json.JSONDecodeError):
        line, column, detail = err.lineno, err.colno, err.msg
    elif type(err).__name__ == "BadSyntax":
        index = getattr(err, "_i", None)
        why = getattr(err, "_why", None) or detail
        detail = f"bad {fmt} syntax ({why})"
    elif fmt in ("nt", "nquads"):
        line = _line_format_error_line(text, fmt)
        detail = f"not a valid {fmt} statement ({detail})"
    elif (match := _RDFXML_LOCATION.match(str(err))) and fmt in ("xml", "trix"):
        line, column, detail = int(match.group(1)), int(match.group(2)) + 1, match.group(3).strip()
    else:
        index = _n3_parser_index(err)
        if isinstance(err, IndexError):
            detail = "the file ends inside this statement"
        elif isinstance(err, RecursionError):
            detail = "structure nested too deeply for the parser (thousands of levels of [ ] or ( ))"
        elif str(err).startswith("Quote expected in string"):
            detail = "this string has no closing quote before the end of the file"
        elif index is not None:
            detail = f"bad {fmt} syntax ({detail})"
    if line is None and index is None:
        index = _quoted_value_index(detail, text)
    detail = detail.rstrip(".! ")
    advice = _format_advice(path, fmt, explicit, text)
    if index is not None:
        line, column = _position(text, index)
        ends_here = not text[index:].strip()
        if ends_here or isinstance(err, IndexError) or detail.endswith("the end of the file"):
            detail += "; the file ends there" if ends_here else ""
            detail += ", so it may be truncated (an interrupted download or copy)"
            advice = "Get a complete copy of the file, or fix it there"
    where = f"{path} line {line}, column {column}" if line and column else f"{path} line {line}" if line else str(path)
    return f"{where}: {detail}. {advice}"


def _sniff_non_rdf_owl(text: str) -> str | None:
    head = text.lstrip()[:2000]
    if head.startswith(("Prefix(", "Ontology(")):
        return "OWL functional syntax"
    if re.search(r"<Ontology\b[^>]*xmlns=\"http://www.w3.org/2002/07/owl#\"", head):
        return "OWL/XML"
    if head.startswith(("Prefix:", "Ontology:")):
        return "OWL Manchester syntax"
    return None


class _PrologEnd(Exception):
    """Raised by the prolog scan at the root element: everything before it has been seen."""


_ENTITY_REFERENCE = re.compile(r"&([A-Za-z_:][\w.:-]*);")
_MAX_ENTITY_EXPANSION = 10_000_000
"""Characters that references to flat internal entities may add (beyond 10 times the file's size)."""


def _xml_entity_problem(path: Path, text: str) -> str | None:
    """Why an XML file's DOCTYPE cannot be read safely, or None when it can.

    rdflib's RDF/XML and TriX parsers expand entities: nested internal ones (the "billion
    laughs") grow a few hundred bytes into gigabytes and hang the parse, and external ones
    (SYSTEM/PUBLIC) silently become nothing. Those, parameter entities, and flat entities
    referenced so often that they would blow the file up, are refused. Flat internal entities
    with plain text values, the way Protégé abbreviates namespaces
    (``<!ENTITY owl "http://www.w3.org/2002/07/owl#">``), stay readable. Expat reads only the
    prolog here: it reports every declaration and stops at the root element, fetching and
    expanding nothing.
    """
    if "<!ENTITY" not in text:  # the cheap common case: no declaration anywhere
        return None
    flat: dict[str, str] = {}
    problem: list[str] = []
    parser = xml.parsers.expat.ParserCreate()

    def entity(name, is_parameter, value, base, system_id, public_id, notation):  # noqa: ANN001, ARG001
        where = f"{path} line {parser.CurrentLineNumber}"
        external = system_id or public_id
        if external or notation:
            problem.append(f"{where}: declares an external XML entity (<!ENTITY {name} SYSTEM/PUBLIC "
                           f"{external!r}>), which kgnet never fetches or expands; inline its content "
                           "in the file and remove the declaration")
        elif is_parameter or value is None or "&" in value or "<" in value:
            kind = "a parameter entity" if is_parameter else "an entity that refers to other entities or markup"
            problem.append(f"{where}: declares XML entities (<!ENTITY {'% ' if is_parameter else ''}{name} ...>, "
                           f"{kind}), which kgnet does not expand; inline them (write out each &name; "
                           "reference) and remove the declarations")
        else:
            flat[name] = value
            return
        raise _PrologEnd

    def root(*_args: object) -> None:
        raise _PrologEnd

    parser.EntityDeclHandler = entity
    parser.StartElementHandler = root
    try:
        parser.Parse(text, True)
    except _PrologEnd:
        pass
    except xml.parsers.expat.ExpatError:
        pass  # malformed: the real parse reports it (with its line); nothing was expanded here
    if problem:
        return problem[0]
    if flat:
        added = sum(len(flat.get(name, "")) for name in _ENTITY_REFERENCE.findall(text))
        if added > 10 * len(text) + _MAX_ENTITY_EXPANSION:
            return (f"{path}: declares XML entities (<!ENTITY>) whose references would expand the file to "
                    f"{(len(text) + added) / 1e6:.0f} MB, which kgnet does not expand; inline them "
                    "(write out each &name; reference) and remove the declarations")
    return None


def _looks_binary(data: bytes) -> bool:
    """Many control bytes (NUL and the like, never in RDF text) near the start: not a text file."""
    sample = data[:8192]
    controls = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return controls > max(3, len(sample) // 100)


def _byte_position(data: bytes, offset: int) -> tuple[int, int]:
    """1-based (line, column in characters) of byte `offset` of undecodable `data`."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    before = data[line_start:offset].decode("utf-8-sig" if line_start == 0 else "utf-8", errors="replace")
    return data.count(b"\n", 0, offset) + 1, len(before) + 1


def _decode_text(path: Path, data: bytes) -> str:
    """The file's text, or an error that says which byte (line, column) is wrong and what to do."""
    if data[:2] == b"\x1f\x8b":
        raise OntologyError(
            f"{path}: this is gzip-compressed data; name the file with a .gz suffix "
            f"({path.name}.gz) so kgnet unpacks it, or gunzip it first"
        )
    if _looks_binary(data):
        raise OntologyError(
            f"{path}: this is a binary file, not RDF text; give an RDF serialisation such as "
            "Turtle, N-Triples or RDF/XML"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line, column = _byte_position(data, err.start)
        raise OntologyError(
            f"{path} line {line}, column {column}: byte {data[err.start]:#04x} is not valid UTF-8, and RDF "
            "text must be UTF-8; fix that character, or convert the whole file "
            "(from Latin-1: `iconv -f latin1 -t utf-8 IN > OUT`)"
        ) from None
    nul = text.find("\x00")
    if nul >= 0:
        line, column = _position(text, nul)
        raise OntologyError(
            f"{path} line {line}, column {column}: a NUL byte (0x00), which RDF text never contains; "
            "delete it (was the file damaged in a copy?)"
        )
    return text


@contextlib.contextmanager
def _rdflib_log_captured() -> Iterator[list[logging.LogRecord]]:
    """Hold back what rdflib logs while it parses: kgnet reports it in its own words, or not at all.

    A wrong --format otherwise prints rdflib WARNING lines ("... does not look like a valid
    URI") above kgnet's one-line error; on a good parse the same records become warnings.
    """
    logger = logging.getLogger("rdflib")
    handler = logging.handlers.BufferingHandler(capacity=10_000)
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler.buffer
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _rdflib_warnings(path: Path, records: list[logging.LogRecord], most: int = 3) -> list[str]:
    """rdflib's parse-time warnings as kgnet warnings naming the file (the first few, then a count)."""
    messages = list(dict.fromkeys(r.getMessage().strip().splitlines()[0][:200] for r in records
                                  if r.levelno >= logging.WARNING and r.getMessage().strip()))
    shown = [f"{path}: rdflib: {m}" for m in messages[:most]]
    if len(messages) > most:
        shown.append(f"{path}: rdflib: {len(messages) - most} more warnings like these")
    return shown


def parse_rdf_file(
    path: str | Path, fmt: str | None = None, into: Graph | None = None, warnings: list[str] | None = None
) -> Graph:
    """Parse one RDF file into `into` (a new graph by default), never touching the network.

    Args:
        path: the file.
        fmt: rdflib format name or alias; None = from the suffix.
        into: the graph to add the triples to.
        warnings: where to append what the user should know about a file that did parse
            (rdflib's own warnings, in kgnet's words).

    Raises:
        KgnetError: a missing or unreadable file (`kgnet.checks.input_file`).
        OntologyError: unknown format, empty, binary, not UTF-8, malformed or truncated; the
            message names the line and column where there is one.
    """
    path = Path(path)
    name = detect_format(path, fmt)
    data = _read_bytes(path)
    if name in _TURTLE_FAMILY:
        _too_many_prefixes(path, data)
    text = _decode_text(path, data)
    if not text.strip():
        raise OntologyError(f"{path}: the file is empty; an ontology needs at least one triple")
    if name in ("xml", "trix") or _sniff_format(text) in ("xml", "trix"):
        problem = _xml_entity_problem(path, text)
        if problem:
            raise OntologyError(problem)
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
            raise OntologyError(_describe_parse_error(path, name, text, err, fmt is not None)) from None
        except RecursionError:
            raise OntologyError(f"{path}: JSON nested too deeply to be an ontology") from None
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
        with _rdflib_log_captured() as records:
            sink.parse(
                source=io.BytesIO(text.encode("utf-8")),
                format=name,
                publicID=path.resolve().as_uri(),
            )
    except OntologyError:
        raise
    except Exception as err:  # noqa: BLE001 - rdflib's parsers raise many unrelated types
        raise OntologyError(_describe_parse_error(path, name, text, err, fmt is not None)) from None
    if warnings is not None:
        warnings.extend(_rdflib_warnings(path, records))
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
    parse_warnings: list[str] = []
    for i, file in enumerate(files):
        before = set(graph.subjects(RDF.type, OWL.Ontology))
        parse_rdf_file(file, fmt if i == 0 else None, into=graph, warnings=parse_warnings)
        if i > 0:
            provided |= {str(s) for s in set(graph.subjects(RDF.type, OWL.Ontology)) - before}
            provided.add(file.resolve().as_uri())
    declared = sorted({str(o) for o in graph.objects(None, OWL.imports) if isinstance(o, URIRef)})
    unresolved = [iri for iri in declared if iri not in provided and not _named_after(iri, files[1:])]
    warnings = parse_warnings + [
        f"owl:imports {iri} was not fetched (kgnet never downloads); its terms are missing "
        "unless you pass a local copy with --imports FILE"
        for iri in unresolved
    ]
    return LoadedOntology(graph, files, declared, unresolved, warnings)


def _named_after(iri: str, files: Iterable[Path]) -> bool:
    """An import `.../pizza.owl` is satisfied by a local file called pizza.owl (or pizza.ttl)."""
    stem = iri.rstrip("/#").rsplit("/", 1)[-1].split(".")[0]
    return any(f.name.split(".")[0] == stem for f in files if stem)
