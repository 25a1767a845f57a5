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
from pathlib import Path
from typing import Sequence

import yaml

from kgnet.errors import ClassMappingError
from kgnet.kg.compile import local_name
from kgnet.kg.graph import KnowledgeGraph
from kgnet.kg.vocab import KGNET

WNID = re.compile(r"^[nvasr]\d{8}$")


def normalise_name(name: str) -> str:
    """"Ankle_boot" / "ankle-boot" / " Ankle  Boot " -> "ankle boot"."""
    return re.sub(r"[\s_\-]+", " ", name).strip().lower()


def read_mapping_file(path: str | Path) -> dict[str, str]:
    """Class name -> node reference from a YAML, JSON, CSV or TSV file."""
    path = Path(path)
    if not path.is_file():
        raise ClassMappingError(f"{path}: class mapping file not found")
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        rows = csv.reader(text.splitlines(), delimiter="\t" if suffix == ".tsv" else ",")
        mapping = {}
        for lineno, row in enumerate(rows, start=1):
            if not row or row[0].startswith("#"):
                continue
            if len(row) != 2:
                raise ClassMappingError(f"{path} line {lineno}: expected 'class name,node IRI', got {row!r}")
            mapping[row[0].strip()] = row[1].strip()
        return mapping
    try:
        data = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as err:
        raise ClassMappingError(f"{path}: not valid {suffix.lstrip('.') or 'YAML'}: {err}") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ClassMappingError(f"{path}: expected a mapping 'class name: node IRI' (one per line)")
    return {str(k): v for k, v in data.items()}


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


def bind_classes(
    kg: KnowledgeGraph,
    class_names: Sequence[str],
    *,
    mapping_file: str | Path | None = None,
    predicate: str | None = None,
    wnids: Sequence[str | None] | None = None,
    source: str = "the ontology",
) -> KnowledgeGraph:
    """Bind every class to one node; return the graph with `class_names`/`class_index` set.

    Raises:
        ClassMappingError: listing every class that matched no node or several, with close
            candidates and what to do.
    """
    index = _Index(kg)
    mapping = read_mapping_file(mapping_file) if mapping_file else None
    if mapping is not None:
        missing = [c for c in class_names if c not in mapping]
        if missing:
            raise ClassMappingError(f"{mapping_file}: no entry for classes {missing}; add one line per class")
    bound: list[int] = []
    unmapped: list[str] = []
    ambiguous: list[str] = []
    for position, name in enumerate(class_names):
        if mapping is not None:
            attempts = [index.reference(mapping[name])]
        else:
            attempts = []
            if predicate:
                attempts.append(index.literal(predicate, name) or index.literal(predicate, str(position)))
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
    clashes = _shared_nodes(class_names, bound) if not (unmapped or ambiguous) else []
    if unmapped or ambiguous or clashes:
        lines = [f"cannot bind the dataset's classes to nodes of {source}:"]
        if unmapped:
            lines.append(f"  no node for {len(unmapped)} classes: " + ", ".join(unmapped))
        lines += [f"  ambiguous: {a}" for a in ambiguous]
        lines += [f"  {c}" for c in clashes]
        lines.append(
            "  fix: give a class mapping file (knowledge.class_map: 'class name: node IRI' per line), "
            "or add labels / kgnet:className literals to the ontology"
        )
        raise ClassMappingError("\n".join(lines))
    return kg.with_classes(list(class_names), bound)


def _shared_nodes(class_names: Sequence[str], bound: list[int]) -> list[str]:
    first: dict[int, str] = {}
    clashes = []
    for name, node in zip(class_names, bound):
        if node in first:
            clashes.append(f"classes {first[node]!r} and {name!r} bind to the same node")
        first.setdefault(node, name)
    return clashes
