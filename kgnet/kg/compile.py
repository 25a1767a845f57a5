"""Compile RDF triples into a `KnowledgeGraph`, reading OWL the way practitioners write it.

- `C rdfs:subClassOf [owl:onProperty P; owl:someValuesFrom D]` (also allValuesFrom, hasValue,
  onClass of qualified cardinalities) is the edge C -P-> D; `owl:inverseOf` properties flip it.
- unionOf / intersectionOf members are followed: `C ⊑ A ⊓ B` gives C subClassOf A and B;
  `D ≡ A ⊔ B` gives A and B subClassOf D.
- Annotation properties (labels, definitions, comments, synonyms, anything declared
  owl:AnnotationProperty) become node text, never edges; other literals become attributes.
- Blank nodes never become nodes; rdf:type owl:Class and other vocabulary bookkeeping never
  becomes an edge; properties and the ontology header are not nodes.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from typing import Iterable

import networkx as nx
import torch
from rdflib import OWL, RDF, RDFS, SKOS, XSD, BNode, Graph, Literal, Namespace, URIRef
from rdflib.collection import Collection
from rdflib.namespace import DC, DCTERMS

from kgnet.kg.graph import KnowledgeGraph
from kgnet.kg.vocab import KGNET

log = logging.getLogger(__name__)

OBO = Namespace("http://purl.obolibrary.org/obo/")
OBO_IN_OWL = Namespace("http://www.geneontology.org/formats/oboInOwl#")

PREFERRED_LABELS = (SKOS.prefLabel, RDFS.label)
OTHER_LABELS = (
    SKOS.altLabel,
    SKOS.hiddenLabel,
    OBO_IN_OWL.hasExactSynonym,
    OBO_IN_OWL.hasRelatedSynonym,
    OBO_IN_OWL.hasNarrowSynonym,
    OBO_IN_OWL.hasBroadSynonym,
)
DEFINITIONS = (
    SKOS.definition,
    RDFS.comment,
    OBO.IAO_0000115,  # OBO's "definition"
    DCTERMS.description,
    DC.description,
    SKOS.scopeNote,
    SKOS.note,
    SKOS.example,
)
BOOKKEEPING_ANNOTATIONS = (
    RDFS.seeAlso,
    RDFS.isDefinedBy,
    OWL.versionInfo,
    OWL.deprecated,
    OWL.imports,
    OWL.versionIRI,
    OWL.priorVersion,
    OWL.backwardCompatibleWith,
    OWL.incompatibleWith,
    SKOS.inScheme,
    SKOS.topConceptOf,
    SKOS.hasTopConcept,
)
VOCABULARY_NAMESPACES = (str(RDF), str(RDFS), str(OWL), str(XSD), str(SKOS))
"""Terms from these namespaces are the modelling language, never domain nodes."""

PROPERTY_TYPES = (
    RDF.Property,
    OWL.ObjectProperty,
    OWL.DatatypeProperty,
    OWL.AnnotationProperty,
    OWL.TransitiveProperty,
    OWL.SymmetricProperty,
    OWL.FunctionalProperty,
    OWL.InverseFunctionalProperty,
    OWL.AsymmetricProperty,
    OWL.ReflexiveProperty,
    OWL.IrreflexiveProperty,
    OWL.OntologyProperty,
)
RESTRICTION_FILLERS = (OWL.someValuesFrom, OWL.allValuesFrom, OWL.hasValue, OWL.onClass)
CLASS_AXIOMS = frozenset((RDFS.subClassOf, OWL.equivalentClass))
HIERARCHY_UP = (RDFS.subClassOf, RDF.type, SKOS.broader)
"""Predicates whose edge goes child -> parent (skos:narrower is read reversed)."""

INVERSE_PREFIX = "^"


def _is_vocabulary(term: URIRef) -> bool:
    return str(term).startswith(VOCABULARY_NAMESPACES)


def _prefer_english(values: Iterable[Literal]) -> list[str]:
    """English and untagged values if there are any, else all; sorted, unique."""
    values = list(values)
    chosen = [v for v in values if not v.language or v.language[:2].lower() == "en"] or values
    return sorted({" ".join(v.split()) for v in chosen} - {""})


def local_name(iri: str) -> str:
    """The last segment of an IRI ("...#hasPart" -> "hasPart")."""
    return re.split(r"[#/:]", iri.rstrip("/#"))[-1] or iri


def humanise(name: str) -> str:
    """"AnkleBoot" / "ankle_boot" -> "ankle boot": a readable label for unlabelled nodes."""
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").replace("-", " ")
    return re.sub(r"\s+", " ", name).strip().lower() or name


def _relation_names(graph: Graph, iris: list[str]) -> list[str]:
    """A short unique name per relation: its CURIE where a prefix is bound, else the IRI."""
    names = []
    for iri in iris:
        try:
            prefix, _, local = graph.namespace_manager.compute_qname_strict(iri, generate=False)
            names.append(f"{prefix}:{local}" if prefix else local)
        except (ValueError, KeyError):
            names.append(iri)
    if len(set(names)) < len(names):
        return list(iris)
    return names


class _Compiler:
    """One pass over the triples, then class expressions, then tensors."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.warnings: list[str] = []
        self.ignored: dict[str, int] = defaultdict(int)
        self.properties: set[URIRef] = set()
        self.annotation_properties: set[URIRef] = {*PREFERRED_LABELS, *OTHER_LABELS, *DEFINITIONS}
        self.texts: dict[URIRef, dict[URIRef, list[Literal]]] = defaultdict(lambda: defaultdict(list))
        self.attributes: dict[URIRef, list[tuple[URIRef, Literal]]] = defaultdict(list)
        self.edges: set[tuple[URIRef, URIRef, URIRef]] = set()
        self.candidates: set[URIRef] = set()
        self.headers: set[URIRef] = set()
        self._node_memo: dict[object, bool] = {}

    def _scan_schema(self) -> None:
        g = self.graph
        for ptype in PROPERTY_TYPES:
            self.properties.update(s for s in g.subjects(RDF.type, ptype) if isinstance(s, URIRef))
        self.annotation_properties.update(
            s for s in g.subjects(RDF.type, OWL.AnnotationProperty) if isinstance(s, URIRef)
        )
        for pred in (RDFS.subPropertyOf, OWL.inverseOf, OWL.equivalentProperty):
            for s, o in g.subject_objects(pred):
                self.properties.update(t for t in (s, o) if isinstance(t, URIRef))
        self.properties.update(o for o in g.objects(None, OWL.onProperty) if isinstance(o, URIRef))
        self.headers = {s for s in g.subjects(RDF.type, OWL.Ontology) if isinstance(s, URIRef)}
        self.headers.update(o for o in g.objects(None, OWL.imports) if isinstance(o, URIRef))

    def _is_node(self, term: object) -> bool:
        known = self._node_memo.get(term)
        if known is None:
            known = self._node_memo[term] = (
                isinstance(term, URIRef)
                and term not in self.properties
                and term not in self.headers
                and not _is_vocabulary(term)
            )
        return known

    def _scan_triples(self) -> None:
        skip = set(BOOKKEEPING_ANNOTATIONS)
        triples = list(self.graph)  # one walk of rdflib's store; it is the slow part
        self.properties.update(p for _, p, _ in triples)
        for s, p, o in triples:
            if not self._is_node(s):
                self.ignored["blank_node_or_schema"] += 1
                continue
            self.candidates.add(s)
            if isinstance(o, Literal):
                if p in self.annotation_properties:
                    self.texts[s][p].append(o)
                elif p in skip:
                    self.ignored["bookkeeping"] += 1
                else:
                    self.attributes[s].append((p, o))
            elif isinstance(o, BNode):
                if p in CLASS_AXIOMS:
                    self._class_expression(s, p, o)
                else:
                    self.ignored["blank_node_or_schema"] += 1
            elif self._is_node(o):
                if p in self.annotation_properties or p in skip:
                    self.ignored["annotation_iri"] += 1
                elif p == SKOS.narrower:
                    self.edges.add((o, SKOS.broader, s))
                else:
                    self.edges.add((s, p, o))
            else:
                self.ignored["vocabulary"] += 1  # rdf:type owl:Class and the like

    def _named_members(self, term: object) -> list[URIRef]:
        """Named classes inside a filler: itself, or the members of a union/intersection."""
        if isinstance(term, URIRef):
            return [term] if self._is_node(term) else []
        if isinstance(term, BNode):
            members: list[URIRef] = []
            for op in (OWL.unionOf, OWL.intersectionOf):
                head = self.graph.value(term, op)
                if head is not None:
                    for member in Collection(self.graph, head):
                        members += self._named_members(member)
            return members
        return []

    def _class_expression(self, subject: URIRef, axiom: URIRef, expr: BNode) -> None:
        g = self.graph
        prop = g.value(expr, OWL.onProperty)
        if prop is not None:
            self._restriction(subject, prop, expr)
            return
        for op in (OWL.intersectionOf, OWL.unionOf):
            head = g.value(expr, op)
            if head is None:
                continue
            for member in Collection(g, head):
                if isinstance(member, BNode):
                    self._class_expression(subject, RDFS.subClassOf, member)
                elif self._is_node(member):
                    if op == OWL.unionOf and axiom == OWL.equivalentClass:
                        self.edges.add((member, RDFS.subClassOf, subject))  # D ≡ A ⊔ B: A ⊑ D
                    else:
                        self.edges.add((subject, RDFS.subClassOf, member))
            return
        self.ignored["unsupported_class_expression"] += 1

    def _restriction(self, subject: URIRef, prop: object, expr: BNode) -> None:
        g = self.graph
        inverse = False
        if isinstance(prop, BNode):  # [owl:inverseOf Q]
            prop, inverse = g.value(prop, OWL.inverseOf), True
        if not isinstance(prop, URIRef):
            self.ignored["unsupported_class_expression"] += 1
            return
        for filler_pred in RESTRICTION_FILLERS:
            filler = g.value(expr, filler_pred)
            if filler is None:
                continue
            if isinstance(filler, Literal):
                self.attributes[subject].append((prop, filler))
                continue
            for target in self._named_members(filler):
                self.edges.add((target, prop, subject) if inverse else (subject, prop, target))
            return

    def _node_text(self, node: URIRef) -> tuple[str, str, list[str]]:
        fields = self.texts.get(node, {})
        if not fields and node not in self.attributes:
            label = humanise(local_name(str(node)))
            return label, label, [label]
        preferred = next((v for p in PREFERRED_LABELS if (v := _prefer_english(fields.get(p, ()))) ), [])
        others = _prefer_english(v for p in (*PREFERRED_LABELS, *OTHER_LABELS) for v in fields.get(p, ()))
        label = preferred[0] if preferred else humanise(local_name(str(node)))
        names = [label] + [n for n in others if n != label]
        definitions = _prefer_english(v for p in DEFINITIONS for v in fields.get(p, ()))
        extra = sorted(
            f"{humanise(local_name(str(p)))}: {v}"
            for p, values in fields.items()
            if p not in PREFERRED_LABELS and p not in OTHER_LABELS and p not in DEFINITIONS
            for v in _prefer_english(values)
        )
        extra += sorted(
            f"{humanise(local_name(str(p)))}: {o}"
            for p, o in self.attributes.get(node, ())
            if not str(p).startswith(str(KGNET))
        )
        text = label
        if len(names) > 1:
            text += f" ({', '.join(names[1:])})"
        if definitions:
            text += ": " + "; ".join(definitions)
        if extra:
            text += ". " + ". ".join(extra)
        return label, text, names

    def compile(self) -> KnowledgeGraph:
        self._scan_schema()
        self._scan_triples()
        for s, _, o in self.edges:
            self.candidates.update((s, o))
        nodes = sorted(self.candidates, key=str)
        node_id = {n: i for i, n in enumerate(nodes)}
        relation_iris = sorted({str(p) for _, p, _ in self.edges})
        relation_id = {iri: r for r, iri in enumerate(relation_iris)}
        base = sorted((relation_id[str(p)], node_id[s], node_id[o]) for s, p, o in self.edges)
        num_rel = len(relation_iris)
        triples = torch.tensor(base, dtype=torch.long).reshape(-1, 3)
        edge_type = torch.cat([triples[:, 0], triples[:, 0] + num_rel])
        edge_index = torch.cat([triples[:, 1:].T, triples[:, [2, 1]].T], dim=1)
        up = {relation_id[str(p)] for p in HIERARCHY_UP if str(p) in relation_id}
        is_up = torch.tensor([r in up for r, _, _ in base], dtype=torch.bool)
        hierarchy_index = triples[is_up][:, 1:].T.contiguous() if base else torch.empty(2, 0, dtype=torch.long)

        labels, texts, names = zip(*(self._node_text(n) for n in nodes)) if nodes else ((), (), ())
        literals: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for node, pairs in self.attributes.items():
            for p, o in pairs:
                literals[str(p)].append((node_id[node], str(o)))
        if self.ignored.get("unsupported_class_expression"):
            self.warnings.append(
                f"{self.ignored['unsupported_class_expression']} OWL class expressions kgnet does not "
                "read (complementOf, oneOf, property chains...) were skipped"
            )
        self.warnings += hierarchy_cycle_warnings([str(n) for n in nodes], hierarchy_index)
        names_r = _relation_names(self.graph, relation_iris)
        return KnowledgeGraph(
            node_iris=[str(n) for n in nodes],
            node_labels=list(labels),
            node_texts=list(texts),
            node_names=[list(n) for n in names],
            edge_index=edge_index.contiguous(),
            edge_type=edge_type,
            relation_names=names_r + [INVERSE_PREFIX + n for n in names_r],
            relation_iris=relation_iris,
            hierarchy_index=hierarchy_index,
            literals={k: sorted(v) for k, v in sorted(literals.items())},
            warnings=list(self.warnings),
            stats={"triples": len(self.graph), **{f"ignored_{k}": v for k, v in sorted(self.ignored.items())}},
        )


def _listed(iris: list[str], most: int = 6) -> str:
    shown = ", ".join(f"<{iri}>" for iri in iris[:most])
    return shown + (f" and {len(iris) - most} more" if len(iris) > most else "")


def hierarchy_cycle_warnings(node_iris: list[str], hierarchy_index: torch.Tensor, most: int = 5) -> list[str]:
    """Warnings naming the nodes of subclass cycles and self-loops in the child -> parent links.

    Both are legal RDF (A ⊑ B ⊑ A just says A ≡ B) and compile fine, but a cycle usually
    means a reversed triple, and the hierarchy-aware metrics then treat its members as one
    node, so mistakes among them and below them count for little.
    """
    if hierarchy_index.numel() == 0:
        return []

    child, parent = hierarchy_index
    warnings = []
    loops = sorted({node_iris[c] for c in child[child == parent].tolist()})
    if loops:
        warnings.append(
            f"{len(loops)} class(es) declared a subclass (or type, or skos:broader) of itself: {_listed(loops)}; "
            "the hierarchy metrics ignore these links, but they are usually a typo"
        )
    child, parent = child[child != parent], parent[child != parent]
    # Peel off every node without a remaining parent or child: on a DAG (the usual case, full
    # WordNet included) nothing is left after a few vectorised passes; what is left holds the
    # cycles, which networkx then separates on that small remainder.
    alive = torch.ones(len(node_iris), dtype=torch.bool)
    while True:
        live = alive[child] & alive[parent]
        has_parent = torch.zeros_like(alive)
        has_parent[child[live]] = True
        has_child = torch.zeros_like(alive)
        has_child[parent[live]] = True
        keep = alive & has_parent & has_child
        if torch.equal(keep, alive):
            break
        alive = keep
    live = alive[child] & alive[parent]
    links = nx.DiGraph(zip(child[live].tolist(), parent[live].tolist()))
    cycles = sorted(sorted(node_iris[n] for n in component)
                    for component in nx.strongly_connected_components(links) if len(component) > 1)
    if cycles:
        listed = "; ".join(_listed(cycle) for cycle in cycles[:most])
        more = f"; and {len(cycles) - most} more" if len(cycles) > most else ""
        warnings.append(
            f"the class hierarchy (rdfs:subClassOf, rdf:type, skos:broader) has {len(cycles)} cycle(s), "
            f"each a set of nodes that are one another's ancestors: {listed}{more}. The hierarchy metrics "
            "(mistake_severity, hdist@k) treat each cycle as one node, so they mean little for classes "
            "in or below it; reverse or remove the link that closes the cycle"
        )
    return warnings


def compile_graph(graph: Graph) -> KnowledgeGraph:
    """Compile an rdflib graph into a `KnowledgeGraph` (not yet bound to any classes)."""
    return _Compiler(graph).compile()
