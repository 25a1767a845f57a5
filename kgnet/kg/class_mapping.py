"""Binding each dataset class to exactly one node of the knowledge graph.

Four ways, tried in this order for every class:
1. an explicit mapping file (YAML/JSON `{class name: IRI, CURIE or wnid}`, or CSV/TSV rows
   `class name,IRI`), which must then cover every class;
2. a predicate in the ontology whose literal is the class name or its label index, when given
   (e.g. `urn:kgnet:classIndex`);
3. a WordNet wnid (from a dataset card, or a class name that is itself a wnid, as ImageNet
   folder names are), matched against `kgnet:wnid` literals and IRIs ending in the wnid; then
   a `kgnet:className` literal equal to the class name;
4. a label match (case, `_`, `-` and spacing ignored) against every label of every node.
Classes that bind to no node or to several are reported together, with close candidates.
"""

from __future__ import annotations

import csv
import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import yaml

from kgnet.checks import input_file
from kgnet.errors import ClassMappingError
from kgnet.kg.compile import OTHER_LABELS, PREFERRED_LABELS, local_name
from kgnet.kg.graph import KnowledgeGraph
from kgnet.kg.vocab import KGNET

WNID = re.compile(r"^[nvasr]\d{8}$")
#: An absolute IRI: a scheme, a colon, then no spaces or characters IRIs never hold.
ABSOLUTE_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]+$")
#: Label predicates: the compiler makes their values node names, which binding matches anyway.
_LABEL_PREDICATES = frozenset(str(p) for p in (*PREFERRED_LABELS, *OTHER_LABELS))
_PREDICATE_EXAMPLE = "e.g. urn:kgnet:classIndex or http://example.org/onto#classCode"


def check_predicate_iri(predicate: str, what: str = "knowledge.class_predicate") -> str:
    """`predicate` if it is an absolute IRI, as class binding by predicate needs.

    Raises:
        ClassMappingError: a bare word ("label"), a string with spaces, an IRI in <...>.
    """
    if not ABSOLUTE_IRI.match(predicate):
        hint = ""
        if predicate.startswith("<") and predicate.endswith(">"):
            hint = f"; drop the angle brackets: {predicate[1:-1]}"
        shown = repr(predicate) if not predicate or re.search(r"\s", predicate) else predicate
        raise ClassMappingError(
            f"{what} {shown}: not an absolute IRI ({_PREDICATE_EXAMPLE}; for labels, "
            f"http://www.w3.org/2000/01/rdf-schema#label){hint}"
        )
    return predicate


def _check_predicate_used(kg: KnowledgeGraph, predicate: str, what: str, source: str) -> None:
    """The predicate gives literal values in the graph (or is a label predicate).

    Raises:
        ClassMappingError: no triple uses it with a literal, naming the predicates that do.
    """
    if predicate in kg.literals or predicate in _LABEL_PREDICATES:
        return
    literal_predicates = sorted(kg.literals)
    if predicate in kg.relation_iris:
        why = ("it only links nodes to nodes here; binding by predicate needs one whose literal value is each "
               "class's name or index")
    else:
        why = "no triple in " + source + " uses this predicate with a literal value"
        if "://" not in predicate and not predicate.startswith("urn:"):
            why += " (a prefixed name such as rdfs:label? give the full IRI)"
    close = difflib.get_close_matches(predicate, literal_predicates, n=3, cutoff=0.6)
    if close:
        options = f"predicates with literal values there, close to it: {', '.join(close)}"
    elif literal_predicates:
        shown = literal_predicates[:8]
        options = "predicates with literal values there: " + ", ".join(shown) + \
            (f" and {len(literal_predicates) - len(shown)} more" if len(literal_predicates) > len(shown) else "")
    else:
        options = "it has no predicates with literal values besides labels and comments"
    raise ClassMappingError(
        f"{what} {predicate}: {why}; {options}; correct the IRI, or leave it out to bind the classes by wnid "
        "and label"
    )


def normalise_name(name: str) -> str:
    """"Ankle_boot" / "ankle-boot" / " Ankle  Boot " -> "ankle boot"."""
    return re.sub(r"[\s_\-]+", " ", name).strip().lower()


@dataclass(frozen=True)
class MappingEntry:
    """One line of a mapping file: the node it names, and where, for error messages."""

    node: str
    line: int | None


def _yaml_keys(text: str) -> list[tuple[str, int]]:
    """(key, 1-based line) of each top-level key of a YAML (or JSON) mapping, in file order."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return []
    if not isinstance(root, yaml.MappingNode):
        return []
    return [(str(key.value), key.start_mark.line + 1) for key, _ in root.value]


def read_mapping_file(path: str | Path) -> dict[str, MappingEntry]:
    """Class name -> node reference (and its line) from a YAML, JSON, CSV or TSV file."""
    path = input_file(path, "class mapping file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ClassMappingError(f"{path}: not UTF-8 text (byte {err.start}); save the mapping file as UTF-8") from None
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        rows = csv.reader(text.splitlines(), delimiter="\t" if suffix == ".tsv" else ",")
        mapping: dict[str, MappingEntry] = {}
        for lineno, row in enumerate(rows, start=1):
            if not row or row[0].startswith("#"):
                continue
            if len(row) != 2:
                raise ClassMappingError(f"{path} line {lineno}: expected 'class name,node IRI', got {row!r}")
            _add_entry(path, mapping, row[0].strip(), row[1].strip(), lineno)
        return mapping
    try:
        data = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as err:
        raise ClassMappingError(f"{path} line {err.lineno}, column {err.colno}: not valid JSON ({err.msg})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path} line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ClassMappingError(f"{where}: not valid YAML ({problem})") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ClassMappingError(f"{path}: expected a mapping 'class name: node IRI' (one per line)")
    # The parsers keep the last of two equal keys silently; a class mapped twice is a mistake.
    mapping = {}
    for name, line in _yaml_keys(text):
        _add_entry(path, mapping, name, data.get(name, ""), line)
    return {str(k): mapping.get(str(k), MappingEntry(v, None)) for k, v in data.items()}


def _add_entry(path: Path, mapping: dict[str, MappingEntry], name: str, node: str, line: int) -> None:
    if name in mapping:
        raise ClassMappingError(
            f"{path} lines {mapping[name].line} and {line}: class {name!r} is mapped twice; keep one line"
        )
    mapping[name] = MappingEntry(node, line)


def _at(path: str | Path, *lines: int | None) -> str:
    """'map.yaml line 3' / 'map.yaml lines 1 and 2' (lines that are unknown are left out)."""
    known = [str(n) for n in lines if n is not None]
    if not known:
        return str(path)
    return f"{path} line {known[0]}" if len(known) == 1 else f"{path} lines {' and '.join(known)}"


class _Index:
    """Look-ups from names, literals and wnids to node ids, built once per graph."""

    def __init__(self, kg: KnowledgeGraph):
        self.kg = kg
        self.by_iri = {iri: i for i, iri in enumerate(kg.node_iris)}
        self.by_name: dict[str, set[int]] = {}
        for i, names in enumerate(kg.node_names):
            for name in names:
                self.by_name.setdefault(normalise_name(name), set()).add(i)
        self.by_wnid: dict[str, set[int]] = {}
        for i, iri in enumerate(kg.node_iris):
            match = re.search(r"([nvasr]\d{8})$", iri)
            if match:
                self.by_wnid.setdefault(match.group(1), set()).add(i)
        for i, value in kg.literals.get(str(KGNET.wnid), ()):
            self.by_wnid.setdefault(value, set()).add(i)

    def literal(self, predicate: str, value: str) -> set[int]:
        return {i for i, v in self.kg.literals.get(predicate, ()) if normalise_name(v) == normalise_name(value)}

    def reference(self, ref: str) -> set[int]:
        """A mapping file's right-hand side: a full IRI, a wnid, or a label."""
        if ref in self.by_iri:
            return {self.by_iri[ref]}
        if WNID.match(ref):
            return self.by_wnid.get(ref, set())
        # A CURIE ("ex:Sneaker"): the compiled graph keeps no prefixes, so match the local name.
        local = ref.split(":", 1)[1] if ":" in ref else None
        by_local = {i for iri, i in self.by_iri.items() if local and local_name(iri) == local}
        return by_local or self.by_name.get(normalise_name(ref), set())

    def describe(self, node: int) -> str:
        text = self.kg.node_texts[node]
        return f"<{self.kg.node_iris[node]}> ({text[:70]}{'...' if len(text) > 70 else ''})"

    def close_candidates(self, name: str, n: int = 3) -> list[str]:
        return difflib.get_close_matches(normalise_name(name), list(self.by_name), n=n, cutoff=0.6)

    def close_references(self, ref: str, n: int = 3) -> list[str]:
        """Node IRIs spelt like a mapping file's IRI, or labels like its label, for the error."""
        if "://" in ref or ref.startswith("urn:"):
            return [f"<{iri}>" for iri in difflib.get_close_matches(ref, list(self.by_iri), n=n, cutoff=0.8)]
        return [repr(name) for name in self.close_candidates(ref.split(":", 1)[-1], n)]


def bind_classes(
    kg: KnowledgeGraph,
    class_names: Sequence[str],
    *,
    mapping_file: str | Path | None = None,
    predicate: str | None = None,
    wnids: Sequence[str | None] | None = None,
    source: str = "the ontology",
    predicate_setting: str = "knowledge.class_predicate",
    dataset_classes: Sequence[str] | None = None,
) -> KnowledgeGraph:
    """Bind every class to one node; return the graph with `class_names`/`class_index` set.

    The returned graph's `warnings` add what is legal but probably wrong: mapping-file entries
    for classes the data set does not have, a predicate that bound none of the classes.

    `predicate_setting` names where `predicate` came from in messages ("--predicate").
    `dataset_classes` are all the data set's classes in label order when `class_names` are some
    of them (`data.classes`): only `class_names` bind, a class's label index (which a predicate
    may give) is still its index in the data set, as an ontology of the whole data set gives it,
    and mapping-file entries for the other classes are expected; None = `class_names` are all.

    Raises:
        ClassMappingError: listing every class that matched no node or several, or that shares
            its node with another class, with close candidates, the mapping file's lines, and
            what to do; a predicate that is no absolute IRI, or that no triple uses.
    """
    if predicate is not None:
        check_predicate_iri(predicate, predicate_setting)
        _check_predicate_used(kg, predicate, predicate_setting, source)
    index = _Index(kg)
    every_class = list(dataset_classes) if dataset_classes is not None else list(class_names)
    position_of = {name: i for i, name in enumerate(every_class)}
    mapping = read_mapping_file(mapping_file) if mapping_file else None
    warnings: list[str] = []
    if mapping is not None:
        missing = [c for c in class_names if c not in mapping]
        if missing:
            raise ClassMappingError(f"{mapping_file}: no entry for classes {missing}; add one line per class")
        extra = [name for name in mapping if name not in position_of]
        if extra:
            listed = ", ".join(f"{name!r}" + (f" (line {mapping[name].line})" if mapping[name].line else "")
                               for name in extra)
            warnings.append(
                f"{mapping_file}: entries for classes the data set does not have, ignored: {listed}; "
                "check them against the data set's class names"
            )
    bound: list[int] = []
    unmapped: list[str] = []
    ambiguous: list[str] = []
    by_predicate = 0
    for position, name in enumerate(class_names):
        if mapping is not None:
            entry = mapping[name]
            found = index.reference(entry.node)
            if len(found) == 1:
                bound.append(next(iter(found)))
            elif not found:
                close = index.close_references(entry.node)
                hint = f" (close: {', '.join(close)})" if close else ""
                unmapped.append(f"{_at(mapping_file, entry.line)}: {name!r} -> {entry.node!r} is no node of "
                                f"{source}{hint}")
            else:
                options = "; ".join(index.describe(i) for i in sorted(found)[:4])
                ambiguous.append(f"{_at(mapping_file, entry.line)}: {name!r} -> {entry.node!r} matches "
                                 f"{len(found)} nodes: {options}")
            continue
        attempts = []
        if predicate:
            attempts.append(index.literal(predicate, name) or index.literal(predicate, str(position_of[name])))
            by_predicate += bool(attempts[-1])
        wnid = wnids[position] if wnids else (name if WNID.match(name) else None)
        if wnid:
            attempts.append(index.by_wnid.get(wnid, set()))
        attempts.append(index.literal(str(KGNET.className), name))
        attempts.append(index.by_name.get(normalise_name(name), set()))
        found = next((a for a in attempts if a), set())
        if len(found) == 1:
            bound.append(next(iter(found)))
        elif not found:
            close = index.close_candidates(name)
            hint = f" (close: {', '.join(repr(c) for c in close)})" if close else ""
            unmapped.append(f"{name!r}{hint}")
        else:
            options = "; ".join(index.describe(i) for i in sorted(found)[:4])
            ambiguous.append(f"{name!r} matches {len(found)} nodes: {options}")
    clashes = (_shared_nodes(kg, class_names, bound, mapping_file, mapping)
               if not (unmapped or ambiguous) else [])
    if unmapped or ambiguous or clashes:
        lines = [f"cannot bind the dataset's classes to nodes of {source}:"]
        if mapping is not None:
            lines += [f"  {u}" for u in unmapped] + [f"  ambiguous: {a}" for a in ambiguous]
            lines += [f"  {c}" for c in clashes]
            lines.append(
                f"  fix: correct these lines of {mapping_file}; give each class its own node by full IRI, "
                "CURIE, wnid or label"
            )
        else:
            if unmapped:
                lines.append(f"  no node for {len(unmapped)} classes: " + ", ".join(unmapped))
            lines += [f"  ambiguous: {a}" for a in ambiguous]
            lines += [f"  {c}" for c in clashes]
            lines.append(
                "  fix: give a class mapping file (knowledge.class_map: 'class name: node IRI' per line), "
                "or add labels / kgnet:className literals to the ontology"
            )
        raise ClassMappingError("\n".join(lines))
    if predicate and mapping is None and not by_predicate and predicate not in _LABEL_PREDICATES:
        warnings.append(
            f"{predicate_setting} {predicate}: no class's name or index (0 to {len(every_class) - 1}) is a value of "
            f"this predicate in {source}, so every class was bound by wnid or label instead; check the predicate"
        )
    result = kg.with_classes(list(class_names), bound)
    result.warnings = [*kg.warnings, *warnings]  # a new list: the unbound graph keeps its own
    return result


def _shared_nodes(
    kg: KnowledgeGraph,
    class_names: Sequence[str],
    bound: list[int],
    mapping_file: str | Path | None,
    mapping: dict[str, MappingEntry] | None,
) -> list[str]:
    first: dict[int, str] = {}
    clashes = []
    for name, node in zip(class_names, bound):
        if node in first:
            other = first[node]
            if mapping is not None:
                where = _at(mapping_file, mapping[other].line, mapping[name].line)
                clashes.append(f"{where}: classes {other!r} and {name!r} both map to <{kg.node_iris[node]}>")
            else:
                clashes.append(f"classes {other!r} and {name!r} bind to the same node <{kg.node_iris[node]}>")
        first.setdefault(node, name)
    return clashes
