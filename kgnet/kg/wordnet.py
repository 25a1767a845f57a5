"""WordNet 3.0 for kgnet: find it on this machine, and export synsets as an RDF ontology.

ImageNet's class ids (wnids such as ``n02084071``) are WordNet 3.0 noun offsets, so WordNet is
where kgnet gets knowledge about a dataset's classes for free: their glosses, lemmas, the
hypernym hierarchy above them, their parts, members, materials and attributes. This module
finds WordNet without the network (NLTK's data folder, else the Debian packages, which NLTK
cannot read as installed) and writes that knowledge as RDF in kgnet's vocabulary. The
ontologies shipped in ``kg/`` come from here, so training needs no WordNet install; exporting
new ones does.

Command line (in `kgnet.kg.__main__`)::

    python -m kgnet.kg wordnet --dataset cifar10 -o kg/cifar10.ttl
    python -m kgnet.kg wordnet --all-nouns -o wordnet-nouns.nt
"""

from __future__ import annotations

import functools
import gzip
import json
import logging
import os
import re
import shutil
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

from rdflib import OWL, RDF, RDFS, SKOS, XSD, Graph, Literal

from kgnet.atomic import atomic_path
from kgnet.data.cards import load_card
from kgnet.errors import DataMissingError, KgnetError
from kgnet.kg.vocab import KGNET, WN
from kgnet.paths import cache_dir
from kgnet.progress import progress

if TYPE_CHECKING:
    from nltk.corpus.reader.wordnet import Synset, WordNetCorpusReader
    from nltk.data import PathPointer
    from rdflib.term import Node

log = logging.getLogger(__name__)

WORDNET_DIR_ENV = "KGNET_WORDNET_DIR"
"""Environment variable naming the one folder to read WordNet 3.0 from (its dict files)."""

DEBIAN_WORDNET_DIR = Path("/usr/share/wordnet")
"""Where Debian's `wordnet-base` and `wordnet-sense-index` packages put the dict files."""

NUM_NOUN_SYNSETS = 82115
"""Noun synsets in WordNet 3.0."""

_HOW_TO_GET = (
    "Install it with `apt-get install wordnet-base wordnet-sense-index` (Debian/Ubuntu) or "
    "`python -m nltk.downloader wordnet`, or set "
    f"{WORDNET_DIR_ENV} to a folder holding the WordNet 3.0 dict files."
)

# The dict files NLTK's reader opens. `lexnames` is written when the source lacks it (Debian
# omits it); `cntlist.rev` only feeds lemma counts and may be missing.
_REQUIRED_FILES = (
    "data.noun", "data.verb", "data.adj", "data.adv",
    "index.noun", "index.verb", "index.adj", "index.adv",
    "noun.exc", "verb.exc", "adj.exc", "adv.exc",
    "index.sense",
)  # fmt: skip
_OPTIONAL_FILES = ("cntlist.rev", "lexnames")

# The 45 lexicographer files of WordNet 3.0, numbered as in lexnames(5); the syntactic
# category is 1 noun, 2 verb, 3 adjective, 4 adverb.
LEXNAMES = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal",
    "noun.artifact", "noun.attribute", "noun.body", "noun.cognition", "noun.communication",
    "noun.event", "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive",
    "noun.object", "noun.person", "noun.phenomenon", "noun.plant", "noun.possession",
    "noun.process", "noun.quantity", "noun.relation", "noun.shape", "noun.state",
    "noun.substance", "noun.time", "verb.body", "verb.change", "verb.cognition",
    "verb.communication", "verb.competition", "verb.consumption", "verb.contact",
    "verb.creation", "verb.emotion", "verb.motion", "verb.perception", "verb.possession",
    "verb.social", "verb.stative", "verb.weather", "adj.ppl",
)  # fmt: skip
_LEXNAME_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}

_WNID = re.compile(r"^([nvar])(\d{8})$")

# File suffix -> rdflib serialisation format, and the names `fmt` also accepts.
_FORMATS = {".ttl": "turtle", ".nt": "nt", ".owl": "xml", ".rdf": "xml", ".xml": "xml", ".jsonld": "json-ld"}
_FORMAT_ALIASES = {"ttl": "turtle", "ntriples": "nt", "rdf": "xml", "owl": "xml", "jsonld": "json-ld"}


# --------------------------------------------------------------------------- locating WordNet


def lexnames_text() -> str:
    """The `lexnames` file of WordNet 3.0: one ``NN<TAB>name<TAB>category`` line per file."""
    lines = (f"{i:02d}\t{name}\t{_LEXNAME_CATEGORY[name.split('.')[0]]}\n" for i, name in enumerate(LEXNAMES))
    return "".join(lines)


def _nltk_wordnet() -> PathPointer | None:
    """WordNet as NLTK's downloader installed it (``corpora/wordnet``, folder or zip), if present."""
    # deferred: nltk takes ~3 s to import; only reading WordNet needs it
    import nltk.data

    try:
        return nltk.data.find("corpora/wordnet")  # looks in wordnet.zip too; never downloads
    except LookupError:
        return None


def _same_file(copy: os.stat_result, original: os.stat_result) -> bool:
    return (copy.st_size, int(copy.st_mtime)) == (original.st_size, int(original.st_mtime))


def _materialise(source: Path) -> Path:
    """Copy `source`'s dict files to where NLTK will read them: ``cache_dir()/nltk_data``.

    NLTK >= 3.9 reads only below `nltk.data.path` and refuses symlinks out of the corpus
    folder, hard links, and files others could write, so these are private copies (36 MB,
    refreshed when the source changes). Each file lands atomically, so concurrent processes
    (DDP ranks) can do this at once.
    """
    missing = [name for name in _REQUIRED_FILES if not (source / name).is_file()]
    if missing:
        hint = " (Debian package `wordnet-sense-index`)" if missing == ["index.sense"] else ""
        raise DataMissingError(f"WordNet folder {source} lacks {', '.join(missing)}{hint}. {_HOW_TO_GET}")
    nltk_data = cache_dir() / "nltk_data"
    target = nltk_data / "corpora" / "wordnet"
    target.mkdir(parents=True, exist_ok=True)
    for folder in (nltk_data, target.parent, target):
        folder.chmod(0o755)
    for name in _REQUIRED_FILES + _OPTIONAL_FILES:
        src = source / name
        if not src.is_file():
            continue
        dst = target / name
        stat = src.stat()
        if dst.is_file() and _same_file(dst.stat(), stat):
            continue
        log.info("copying WordNet file %s into %s", src, target)
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)
            tmp.chmod(0o644)
            os.utime(tmp, (stat.st_atime, stat.st_mtime))
    lexnames = target / "lexnames"
    if not (source / "lexnames").is_file() and not lexnames.is_file():
        with atomic_path(lexnames) as tmp:
            tmp.write_text(lexnames_text(), encoding="utf-8")
            tmp.chmod(0o644)
    return target


def _locate_wordnet() -> Path | PathPointer:
    """Where NLTK should read WordNet 3.0 from; see `load_wordnet` for the search order."""
    chosen = os.environ.get(WORDNET_DIR_ENV)
    if chosen:
        source = Path(chosen).expanduser()
        if not source.is_dir():
            raise DataMissingError(f"{WORDNET_DIR_ENV}={chosen} is not a folder. {_HOW_TO_GET}")
        if not (source / "data.noun").is_file():
            raise DataMissingError(f"No WordNet in {source} ({WORDNET_DIR_ENV}): no data.noun. {_HOW_TO_GET}")
        return _materialise(source)
    found = _nltk_wordnet()
    if found is not None:
        return found
    if (DEBIAN_WORDNET_DIR / "data.noun").is_file():
        return _materialise(DEBIAN_WORDNET_DIR)
    raise DataMissingError(
        f"WordNet 3.0 is not on this machine (looked in NLTK's data path and {DEBIAN_WORDNET_DIR}). "
        + _HOW_TO_GET
    )


@functools.lru_cache(maxsize=1)
def load_wordnet() -> WordNetCorpusReader:
    """Open WordNet 3.0 with NLTK, never touching the network.

    Search order: the folder named by ``$KGNET_WORDNET_DIR`` (and only it, when set); NLTK's
    data path (``python -m nltk.downloader wordnet``); the Debian packages in
    ``/usr/share/wordnet``. Folders outside NLTK's data path are copied into
    ``cache_dir()/nltk_data/corpora/wordnet`` first, with the `lexnames` file Debian omits.
    The reader is cached; call ``load_wordnet.cache_clear()`` after changing the environment.

    Returns:
        NLTK's `WordNetCorpusReader` over WordNet 3.0.

    Raises:
        DataMissingError: WordNet is not found, is incomplete, or is not version 3.0.
    """
    # deferred: nltk takes ~3 s to import; only reading WordNet needs it
    import nltk.data
    from nltk.corpus.reader.wordnet import WordNetCorpusReader
    from nltk.data import FileSystemPathPointer

    root = _locate_wordnet()
    if isinstance(root, Path):  # our copy: NLTK reads only below its data path
        folder = root.resolve()
        nltk_data = str(folder.parent.parent)
        if nltk_data not in nltk.data.path:
            nltk.data.path.append(nltk_data)
        root = FileSystemPathPointer(str(folder))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available": we need none
        reader = WordNetCorpusReader(root, None)
    _check_version(reader, root)
    log.debug("WordNet 3.0 read from %s", root)
    return reader


def _check_version(reader: WordNetCorpusReader, folder: object) -> None:
    """Refuse other WordNet versions: their offsets are not ImageNet's wnids."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dog = reader.synset_from_pos_and_offset("n", 2084071)
    if dog is None or dog.name() != "dog.n.01":
        raise DataMissingError(
            f"The WordNet in {folder} is not version 3.0 (n02084071 is not dog.n.01). {_HOW_TO_GET}"
        )


def wnid_of(synset: Synset) -> str:
    """The wnid of a synset: part of speech and 8-digit WordNet 3.0 offset, e.g. ``n02084071``.

    Adjective satellites get ``a`` (they live in ``data.adj``), so `synset_of` finds them again.
    """
    pos = "a" if synset.pos() == "s" else synset.pos()
    return f"{pos}{synset.offset():08d}"


def synset_of(wnid: str) -> Synset:
    """The WordNet 3.0 synset of a wnid such as ``n02084071``.

    Raises:
        KgnetError: `wnid` is malformed or names no synset.
    """
    match = _WNID.match(wnid)
    if match is None:
        raise KgnetError(f"{wnid!r} is not a wnid (a part of speech n/v/a/r and 8 digits, e.g. n02084071)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synset = load_wordnet().synset_from_pos_and_offset(match.group(1), int(match.group(2)))
    if synset is None:
        raise KgnetError(f"wnid {wnid} is not a WordNet 3.0 synset")
    return synset


def first_noun_sense(name: str) -> Synset | None:
    """The most frequent noun sense of a class name ("golden retriever", "Golden_Retriever", "dogs")."""
    synsets = load_wordnet().synsets(re.sub(r"\s+", "_", name.strip()), pos="n")
    return synsets[0] if synsets else None


# --------------------------------------------------------------------------- RDF export

Triple = tuple["Node", "Node", "Node"]

# WordNet pointer methods -> kgnet property, all written WHOLE -> PART.
_MERONYMS = {"part_meronyms": "hasPart", "member_meronyms": "hasMember", "substance_meronyms": "hasSubstance"}
_HOLONYMS = {"part_holonyms": "hasPart", "member_holonyms": "hasMember", "substance_holonyms": "hasSubstance"}

_OBJECT_PROPERTIES = {
    "hasPart": ("has part", "WHOLE kgnet:hasPart PART (WordNet part meronym / holonym)."),
    "hasMember": ("has member", "GROUP kgnet:hasMember MEMBER (WordNet member meronym / holonym)."),
    "hasSubstance": ("has substance", "THING kgnet:hasSubstance SUBSTANCE (WordNet substance meronym)."),
    "attribute": ("attribute", "NOUN kgnet:attribute ADJECTIVE: a value of the attribute (WordNet)."),
}
# Datatype, not annotation, properties: kgnet's compiler keeps their values as node literals
# (what class mapping binds by) and out of the node text the sentence encoder reads.
_DATATYPE_PROPERTIES = {
    "wnid": ("WordNet id", "WordNet 3.0 part of speech and offset, e.g. n02084071 (ImageNet's ids)."),
    "lexname": ("lexicographer file", "WordNet lexicographer file of the synset, e.g. noun.artifact."),
    "className": ("class name", "Name of the dataset class bound to this node."),
    "classIndex": ("class index", "Label index of the dataset class bound to this node."),
}


def _label(lemma_name: str) -> str:
    return lemma_name.replace("_", " ")


def _describe(synset: Synset, *, full: bool = True) -> Iterator[Triple]:
    """The node triples of one synset: type, labels, definition, wnid, lexname."""

    node = WN[wnid_of(synset)]
    labels = list(dict.fromkeys(_label(name) for name in synset.lemma_names()))
    yield node, RDFS.label, Literal(labels[0], lang="en")
    yield node, SKOS.definition, Literal(synset.definition(), lang="en")
    yield node, KGNET.wnid, Literal(wnid_of(synset))
    if full:
        yield node, RDF.type, OWL.Class
        yield node, SKOS.prefLabel, Literal(labels[0], lang="en")
        for label in labels[1:]:
            yield node, SKOS.altLabel, Literal(label, lang="en")
        yield node, KGNET.lexname, Literal(synset.lexname())


def _hypernym_closure(synsets: Iterable[Synset]) -> list[Synset]:
    """The synsets and all their hypernyms and instance hypernyms, transitively."""
    seen: dict[str, Synset] = {}
    stack = list(synsets)
    while stack:
        synset = stack.pop()
        if synset.name() in seen:
            continue
        seen[synset.name()] = synset
        stack.extend(synset.hypernyms())
        stack.extend(synset.instance_hypernyms())
    return [seen[name] for name in sorted(seen)]


def _header(title: str, comment: str) -> Iterator[Triple]:
    """The `owl:Ontology` node and the declarations of kgnet's properties."""

    ontology = KGNET[f"ontology/{title}"]
    yield ontology, RDF.type, OWL.Ontology
    yield ontology, RDFS.label, Literal(f"WordNet 3.0 ontology: {title}", lang="en")
    yield ontology, RDFS.comment, Literal(comment, lang="en")
    yield ontology, OWL.versionInfo, Literal("WordNet 3.0")
    declared = [(OWL.ObjectProperty, _OBJECT_PROPERTIES), (OWL.DatatypeProperty, _DATATYPE_PROPERTIES)]
    for kind, properties in declared:
        for name, (label, description) in properties.items():
            yield KGNET[name], RDF.type, kind
            yield KGNET[name], RDFS.label, Literal(label, lang="en")
            yield KGNET[name], RDFS.comment, Literal(description, lang="en")


def _class_triples(class_synsets: Sequence[Synset], class_names: Sequence[str] | None) -> list[Triple]:
    """Nodes and edges for class synsets, their hypernym closure and their neighbours."""

    triples: list[Triple] = []
    core = _hypernym_closure(class_synsets)
    described = {synset.name() for synset in core}
    neighbours: dict[str, Synset] = {}

    def neighbour(synset: Synset) -> Node:
        if synset.name() not in described:
            neighbours.setdefault(synset.name(), synset)
        return WN[wnid_of(synset)]

    for synset in progress(core, desc="WordNet synsets", unit="synset"):
        node = WN[wnid_of(synset)]
        triples.extend(_describe(synset))
        triples.extend((node, RDFS.subClassOf, WN[wnid_of(h)]) for h in synset.hypernyms())
        triples.extend((node, RDF.type, WN[wnid_of(h)]) for h in synset.instance_hypernyms())
        for method, prop in _MERONYMS.items():
            triples.extend((node, KGNET[prop], neighbour(part)) for part in getattr(synset, method)())
        for method, prop in _HOLONYMS.items():
            triples.extend((neighbour(whole), KGNET[prop], node) for whole in getattr(synset, method)())
        triples.extend((node, KGNET.attribute, neighbour(value)) for value in synset.attributes())
    for name in sorted(neighbours):
        triples.extend(_describe(neighbours[name]))
    if class_names is not None:
        for index, (synset, class_name) in enumerate(zip(class_synsets, class_names)):
            node = WN[wnid_of(synset)]
            triples.append((node, KGNET.className, Literal(class_name)))
            triples.append((node, KGNET.classIndex, Literal(index)))
    return triples


def _all_noun_triples() -> list[Triple]:
    """Every noun synset with label, definition, wnid, hypernyms, instance hypernyms, parts.

    Built in data.noun order (deterministic, no duplicates), so no sorting is needed.
    """

    triples: list[Triple] = []
    synsets = load_wordnet().all_synsets("n")
    for synset in progress(synsets, total=NUM_NOUN_SYNSETS, desc="WordNet nouns", unit="synset"):
        node = WN[wnid_of(synset)]
        triples.extend(_describe(synset, full=False))
        triples.extend((node, RDFS.subClassOf, WN[wnid_of(h)]) for h in synset.hypernyms())
        triples.extend((node, RDF.type, WN[wnid_of(h)]) for h in synset.instance_hypernyms())
        triples.extend((node, KGNET.hasPart, WN[wnid_of(p)]) for p in synset.part_meronyms())
    return triples


def _classes_to_synsets(classes: Sequence[str]) -> list[Synset]:
    """First noun sense per class name, each choice logged so a person can check it."""
    synsets: list[Synset] = []
    unknown: list[str] = []
    for name in classes:
        synset = first_noun_sense(name)
        if synset is None:
            unknown.append(name)
            continue
        log.warning("class %r -> %s (%s): %s", name, synset.name(), wnid_of(synset), synset.definition())
        synsets.append(synset)
    if unknown:
        raise KgnetError(
            f"no WordNet noun synset for class name(s): {', '.join(map(repr, unknown))}; "
            "give their wnids instead (export_ontology(wnids=...) or a dataset card)"
        )
    return synsets


def _check_distinct(synsets: Sequence[Synset], names: Sequence[str]) -> None:
    by_synset: dict[str, list[str]] = {}
    for synset, name in zip(synsets, names):
        by_synset.setdefault(wnid_of(synset), []).append(name)
    shared = {wnid: group for wnid, group in by_synset.items() if len(group) > 1}
    if shared:
        listing = "; ".join(f"{wnid}: {', '.join(map(repr, shared[wnid]))}" for wnid in sorted(shared))
        raise KgnetError(f"several classes map to the same WordNet synset ({listing}); give distinct wnids")


def export_ontology(
    *,
    wnids: Sequence[str] | None = None,
    classes: Sequence[str] | None = None,
    dataset: str | None = None,
    all_nouns: bool = False,
    out: str | os.PathLike | None = None,
    fmt: str | None = None,
) -> Graph:
    """Export WordNet 3.0 knowledge about some synsets as an RDF graph in kgnet's vocabulary.

    Every synset is the node ``wn:<wnid>`` (an `owl:Class` with `rdfs:label`, `skos:prefLabel`,
    `skos:altLabel`, `skos:definition`, `kgnet:wnid`, `kgnet:lexname`). The class synsets come
    with their full hypernym closure (hypernym -> `rdfs:subClassOf`, instance hypernym ->
    `rdf:type`); for each of those, part/member/substance meronyms and holonyms are written
    WHOLE -> PART as `kgnet:hasPart` / `kgnet:hasMember` / `kgnet:hasSubstance`, and
    attributes as `kgnet:attribute`. Class synsets of a dataset or of class names also get
    `kgnet:className` and `kgnet:classIndex` (label order). The same input always gives the
    same bytes.

    Args:
        wnids: Class synsets by wnid (e.g. ``["n02084071"]``).
        classes: Class names; each takes its first (most frequent) noun sense, logged as a
            warning so a person can check the choice.
        dataset: A dataset card name or path; its curated wnids and class names.
        all_nouns: All 82,115 noun synsets with labels, definitions, wnids, hypernyms,
            instance hypernyms and part meronyms (no closure, no other relations).
        out: File to write (atomically); format from the suffix (.ttl, .nt, .owl/.rdf, .jsonld,
            each optionally .gz) unless `fmt` is given.
        fmt: rdflib format name ("turtle", "nt", "xml", "json-ld") overriding the suffix.

    Returns:
        The graph.

    Raises:
        KgnetError: Not exactly one source, unknown class names or wnids, two classes on one
            synset, or an unknown output format.
        DataMissingError: WordNet 3.0 is not on this machine.
    """

    sources = {"wnids": wnids is not None, "classes": classes is not None, "dataset": dataset is not None}
    given = [name for name, present in {**sources, "all_nouns": all_nouns}.items() if present]
    if len(given) != 1:
        raise KgnetError(
            "export_ontology needs exactly one of wnids, classes, dataset, all_nouns "
            f"(got {', '.join(given) or 'none'})"
        )
    if out is not None:
        _output_format(Path(out), fmt)  # fail on a bad suffix before the work

    class_names: list[str] | None = None
    if all_nouns:
        title = "wordnet-nouns"
        comment = (
            "Exported by kgnet from WordNet 3.0 (Princeton University): all noun synsets with "
            "labels, definitions, wnids, hypernyms (rdfs:subClassOf), instance hypernyms "
            "(rdf:type) and part meronyms (kgnet:hasPart)."
        )
        body = _all_noun_triples()
    else:
        if dataset is not None:

            card = load_card(dataset)
            title = card.name
            synsets = [synset_of(wnid) for wnid in card.wnids]
            class_names = list(card.classes)
        elif classes is not None:
            title = "classes"
            synsets = _classes_to_synsets(classes)
            class_names = list(classes)
        else:
            assert wnids is not None
            title = "wnids"
            synsets = [synset_of(wnid) for wnid in wnids]
        if class_names is not None:
            _check_distinct(synsets, class_names)
        comment = (
            f"Exported by kgnet from WordNet 3.0 (Princeton University) for {len(synsets)} class "
            "synsets: their hypernym closure (rdfs:subClassOf, instance hypernyms as rdf:type); "
            "part, member and substance meronyms and holonyms of all of those (kgnet:hasPart, "
            "kgnet:hasMember, kgnet:hasSubstance, written whole -> part); attributes "
            "(kgnet:attribute); lemmas, glosses, wnids and lexicographer files."
        )
        body = _class_triples(synsets, class_names)

    graph = Graph(bind_namespaces="core")
    prefixes = {"wn": WN, "kgnet": KGNET, "owl": OWL, "rdf": RDF, "rdfs": RDFS, "skos": SKOS, "xsd": XSD}
    for prefix, namespace in prefixes.items():
        graph.bind(prefix, namespace)
    if not all_nouns:  # insertion order decides the order of RDF/XML and JSON-LD output
        body = sorted(set(body), key=lambda t: (str(t[0]), str(t[1]), t[2].n3()))
    graph.addN((s, p, o, graph) for s, p, o in [*_header(title, comment), *body])
    log.info("WordNet export %s: %d triples", title, len(graph))
    if out is not None:
        write_graph(graph, out, fmt)
    return graph


def _output_format(path: Path, fmt: str | None) -> tuple[str, bool]:
    """rdflib format and whether to gzip, from `fmt` or the file suffix."""
    suffixes = [s.lower() for s in path.suffixes]
    compressed = bool(suffixes) and suffixes[-1] == ".gz"
    if compressed:
        suffixes = suffixes[:-1]
    if fmt is not None:
        fmt = _FORMAT_ALIASES.get(fmt.lower(), fmt.lower())
        if fmt not in set(_FORMATS.values()):
            raise KgnetError(f"unknown RDF output format {fmt!r}; use turtle, nt, xml or json-ld")
        return fmt, compressed
    if suffixes and suffixes[-1] in _FORMATS:
        return _FORMATS[suffixes[-1]], compressed
    raise KgnetError(
        f"cannot tell the RDF format of {path} from its suffix; use .ttl, .nt, .owl, .rdf, .xml or "
        ".jsonld (optionally + .gz), or pass fmt"
    )


def _canonical(graph: Graph, rdf_format: str) -> bytes:
    """`graph` serialised with everything sorted, so equal graphs give equal bytes.

    rdflib sorts Turtle itself; its other serialisers follow the order of a hash set, so
    N-Triples lines, JSON-LD nodes and values, and RDF/XML descriptions and properties are
    sorted here.
    """
    text = graph.serialize(format=rdf_format)
    if rdf_format == "nt":
        text = "".join(sorted(line + "\n" for line in text.splitlines() if line.strip()))
    elif rdf_format == "json-ld":

        def json_key(value: object) -> str:
            return json.dumps(value, sort_keys=True, ensure_ascii=False)

        nodes = json.loads(text)
        for node in nodes:
            for name, values in node.items():
                if isinstance(values, list):
                    node[name] = sorted(values, key=json_key)
        text = json.dumps(sorted(nodes, key=json_key), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    elif rdf_format == "xml":

        for prefix, namespace in graph.namespaces():  # keep the graph's prefixes (ET's registry is global)
            if prefix and not re.fullmatch(r"ns\d+", prefix):
                ET.register_namespace(prefix, str(namespace))
        root = ET.fromstring(text.encode("utf-8"))

        def xml_key(element: ET.Element) -> str:
            return ET.tostring(element, encoding="unicode")

        for description in root:
            description[:] = sorted(description, key=xml_key)
        root[:] = sorted(root, key=xml_key)
        ET.indent(root)
        return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
    return text.encode("utf-8")


def write_graph(graph: Graph, out: str | os.PathLike, fmt: str | None = None) -> None:
    """Serialise `graph` to `out` atomically and reproducibly (sorted; gzip without a timestamp).

    Args:
        graph: The graph to write.
        out: Destination; format from its suffix unless `fmt` is given; ``.gz`` compresses.
        fmt: rdflib format name overriding the suffix.
    """
    path = Path(out)
    rdf_format, compressed = _output_format(path, fmt)
    data = _canonical(graph, rdf_format)
    if compressed:
        data = gzip.compress(data, mtime=0)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
        tmp.chmod(0o644)  # a shipped file, readable by all; the temporary file is private
    log.info("wrote %s (%d triples, %d bytes)", path, len(graph), len(data))
