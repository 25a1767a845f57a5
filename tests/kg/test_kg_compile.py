"""RDF in several serialisations -> the expected nodes, edges and relation types."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
import rdflib
import torch

from kgnet.kg.build import load_knowledge_graph
from kgnet.kg.compile import compile_graph
from kgnet.kg.load import load_ontology

EX = "http://example.org/shoes#"

SHOES_TTL = """\
@prefix ex: <http://example.org/shoes#> .
@prefix owl: <http://www.w3.org/2002/07/owl#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .

<http://example.org/shoes> a owl:Ontology ; rdfs:comment "a tiny footwear ontology" .
ex:hasPart a owl:ObjectProperty ; rdfs:label "has part" .
ex:madeOf a owl:ObjectProperty .
ex:note a owl:AnnotationProperty .
ex:Footwear a owl:Class ; rdfs:label "footwear"@en , "Schuhwerk"@de ;
    skos:definition "clothing worn on the feet"@en .
ex:Sneaker a owl:Class ;
    rdfs:subClassOf ex:Footwear ,
        [ a owl:Restriction ; owl:onProperty ex:hasPart ; owl:someValuesFrom ex:RubberSole ] ;
    skos:altLabel "trainer" ; ex:note "casual" ; rdfs:seeAlso ex:Boot .
ex:Boot a owl:Class ;
    rdfs:subClassOf [ owl:intersectionOf ( ex:Footwear
        [ a owl:Restriction ; owl:onProperty ex:madeOf ;
          owl:allValuesFrom [ owl:unionOf ( ex:Leather ex:Rubber ) ] ] ) ] .
ex:Sole owl:equivalentClass [ owl:unionOf ( ex:RubberSole ex:LeatherSole ) ] .
ex:Boot owl:disjointWith ex:Sneaker .
ex:myBoot a ex:Boot .
"""

EXPECTED_EDGES = {
    ("Sneaker", "rdfs:subClassOf", "Footwear"),
    ("Sneaker", "ex:hasPart", "RubberSole"),
    ("Boot", "rdfs:subClassOf", "Footwear"),
    ("Boot", "ex:madeOf", "Leather"),
    ("Boot", "ex:madeOf", "Rubber"),
    ("RubberSole", "rdfs:subClassOf", "Sole"),
    ("LeatherSole", "rdfs:subClassOf", "Sole"),
    ("Boot", "owl:disjointWith", "Sneaker"),
    ("myBoot", "rdf:type", "Boot"),
}
EXPECTED_NODES = {"Boot", "Footwear", "Leather", "LeatherSole", "Rubber", "RubberSole", "Sneaker", "Sole", "myBoot"}

# The same knowledge as RDF/XML, written the way OWL tools export it.
SHOES_OWL = """\
<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns:rdfs="http://www.w3.org/2000/01/rdf-schema#"
         xmlns:owl="http://www.w3.org/2002/07/owl#"
         xmlns:skos="http://www.w3.org/2004/02/skos/core#"
         xmlns:ex="http://example.org/shoes#">
  <owl:Ontology rdf:about="http://example.org/shoes"/>
  <owl:ObjectProperty rdf:about="http://example.org/shoes#hasPart"/>
  <owl:ObjectProperty rdf:about="http://example.org/shoes#madeOf"/>
  <owl:Class rdf:about="http://example.org/shoes#Footwear">
    <rdfs:label xml:lang="en">footwear</rdfs:label>
    <rdfs:label xml:lang="de">Schuhwerk</rdfs:label>
    <skos:definition xml:lang="en">clothing worn on the feet</skos:definition>
  </owl:Class>
  <owl:Class rdf:about="http://example.org/shoes#Sneaker">
    <rdfs:subClassOf rdf:resource="http://example.org/shoes#Footwear"/>
    <rdfs:subClassOf>
      <owl:Restriction>
        <owl:onProperty rdf:resource="http://example.org/shoes#hasPart"/>
        <owl:someValuesFrom rdf:resource="http://example.org/shoes#RubberSole"/>
      </owl:Restriction>
    </rdfs:subClassOf>
    <skos:altLabel>trainer</skos:altLabel>
  </owl:Class>
  <owl:Class rdf:about="http://example.org/shoes#Boot">
    <rdfs:subClassOf>
      <owl:Class>
        <owl:intersectionOf rdf:parseType="Collection">
          <owl:Class rdf:about="http://example.org/shoes#Footwear"/>
          <owl:Restriction>
            <owl:onProperty rdf:resource="http://example.org/shoes#madeOf"/>
            <owl:allValuesFrom>
              <owl:Class>
                <owl:unionOf rdf:parseType="Collection">
                  <owl:Class rdf:about="http://example.org/shoes#Leather"/>
                  <owl:Class rdf:about="http://example.org/shoes#Rubber"/>
                </owl:unionOf>
              </owl:Class>
            </owl:allValuesFrom>
          </owl:Restriction>
        </owl:intersectionOf>
      </owl:Class>
    </rdfs:subClassOf>
    <owl:disjointWith rdf:resource="http://example.org/shoes#Sneaker"/>
  </owl:Class>
  <owl:Class rdf:about="http://example.org/shoes#Sole">
    <owl:equivalentClass>
      <owl:Class>
        <owl:unionOf rdf:parseType="Collection">
          <owl:Class rdf:about="http://example.org/shoes#RubberSole"/>
          <owl:Class rdf:about="http://example.org/shoes#LeatherSole"/>
        </owl:unionOf>
      </owl:Class>
    </owl:equivalentClass>
  </owl:Class>
  <owl:NamedIndividual rdf:about="http://example.org/shoes#myBoot">
    <rdf:type rdf:resource="http://example.org/shoes#Boot"/>
  </owl:NamedIndividual>
</rdf:RDF>
"""


def _edges(kg, by_iri: bool = False) -> set[tuple[str, str, str]]:
    names = [iri.split("#")[-1] for iri in kg.node_iris]
    base = kg.num_base_relations
    relations = kg.relation_iris if by_iri else kg.relation_names
    return {
        (names[s], relations[t], names[d])
        for (s, d), t in zip(kg.edge_index.T.tolist(), kg.edge_type.tolist())
        if t < base
    }


@pytest.fixture
def shoes_ttl(tmp_path: Path) -> Path:
    path = tmp_path / "shoes.ttl"
    path.write_text(SHOES_TTL)
    return path


def test_turtle_owl_restrictions_become_typed_edges(shoes_ttl: Path) -> None:
    kg = load_knowledge_graph(shoes_ttl, use_cache=False)
    assert {iri.split("#")[-1] for iri in kg.node_iris} == EXPECTED_NODES
    assert _edges(kg) == EXPECTED_EDGES
    # Every base relation has its inverse, and every base edge appears reversed.
    assert kg.relation_names[kg.num_base_relations:] == ["^" + n for n in kg.relation_names[: kg.num_base_relations]]
    base = kg.edge_type < kg.num_base_relations
    forward = set(map(tuple, kg.edge_index[:, base].T.tolist()))
    backward = set(map(tuple, kg.edge_index[:, ~base].flip(0).T.tolist()))
    assert forward == backward


def test_no_bogus_nodes_or_bookkeeping_edges(shoes_ttl: Path) -> None:
    kg = load_knowledge_graph(shoes_ttl, use_cache=False)
    assert not any(iri.startswith(("http://www.w3.org/", "_:")) for iri in kg.node_iris)
    assert "http://example.org/shoes" not in kg.node_iris  # the ontology header
    assert EX + "hasPart" not in kg.node_iris  # properties are relations, not nodes
    assert "rdfs:seeAlso" not in kg.relation_names and "ex:note" not in kg.relation_names
    assert set(kg.relation_names[: kg.num_base_relations]) == {
        "ex:hasPart", "ex:madeOf", "rdf:type", "rdfs:subClassOf", "owl:disjointWith",
    }


def test_annotations_become_text_english_preferred(shoes_ttl: Path) -> None:
    kg = load_knowledge_graph(shoes_ttl, use_cache=False)
    footwear = kg.node_id(EX + "Footwear")
    assert kg.node_labels[footwear] == "footwear"  # not the German label
    assert kg.node_texts[footwear] == "footwear: clothing worn on the feet"
    sneaker = kg.node_id(EX + "Sneaker")
    assert kg.node_names[sneaker] == ["sneaker", "trainer"]  # no label: humanised local name
    assert "note: casual" in kg.node_texts[sneaker]  # a declared annotation property is text


def test_hierarchy_holds_subclass_and_type_links(shoes_ttl: Path) -> None:
    kg = load_knowledge_graph(shoes_ttl, use_cache=False)
    names = [iri.split("#")[-1] for iri in kg.node_iris]
    links = {(names[c], names[p]) for c, p in kg.hierarchy_index.T.tolist()}
    assert links == {
        ("Sneaker", "Footwear"), ("Boot", "Footwear"), ("RubberSole", "Sole"),
        ("LeatherSole", "Sole"), ("myBoot", "Boot"),
    }
    above = {names[i] for i in kg.ancestors([kg.node_id(EX + "myBoot")]).tolist()}
    assert above == {"myBoot", "Boot", "Footwear"}


@pytest.mark.parametrize("suffix", [".owl", ".rdf", ".owl.gz"])
def test_rdfxml_owl_gives_the_same_graph(tmp_path: Path, shoes_ttl: Path, suffix: str) -> None:
    path = tmp_path / f"shoes{suffix}"
    data = SHOES_OWL.encode()
    path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    kg = load_knowledge_graph(path, use_cache=False)
    assert {iri.split("#")[-1] for iri in kg.node_iris} == EXPECTED_NODES
    assert _edges(kg) == EXPECTED_EDGES


def test_jsonld_ntriples_trig_and_gz(tmp_path: Path, shoes_ttl: Path) -> None:
    reference = load_ontology(shoes_ttl).graph
    expected = _edges(compile_graph(reference), by_iri=True)
    dataset = rdflib.Dataset()
    dataset.graph(rdflib.URIRef("http://example.org/named")).__iadd__(reference)
    for fmt, suffix in [("json-ld", ".jsonld"), ("nt", ".nt"), ("trig", ".trig"), ("nquads", ".nq")]:
        source = dataset if fmt in ("trig", "nquads") else reference
        path = tmp_path / f"shoes{suffix}.gz"
        path.write_bytes(gzip.compress(source.serialize(format=fmt).encode()))
        kg = load_knowledge_graph(path, use_cache=False)
        names = {iri.split("#")[-1] for iri in kg.node_iris}
        assert names == EXPECTED_NODES, fmt
        assert _edges(kg, by_iri=True) == expected, fmt


def test_explicit_format_overrides_suffix(tmp_path: Path) -> None:
    path = tmp_path / "shoes.data"
    path.write_text(SHOES_TTL)
    kg = load_knowledge_graph(path, fmt="ttl", use_cache=False)
    assert kg.num_nodes == len(EXPECTED_NODES)


def test_jsonld_with_inline_context(tmp_path: Path) -> None:
    doc = {
        "@context": {"ex": EX, "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
                     "sub": {"@id": "rdfs:subClassOf", "@type": "@id"}},
        "@graph": [{"@id": "ex:Sneaker", "sub": "ex:Footwear", "rdfs:label": "sneaker"}],
    }
    path = tmp_path / "tiny.jsonld"
    path.write_text(json.dumps(doc))
    kg = load_knowledge_graph(path, use_cache=False)
    assert _edges(kg) == {("Sneaker", "rdfs:subClassOf", "Footwear")}


def test_imports_are_reported_and_satisfied_by_local_files(tmp_path: Path) -> None:
    main = tmp_path / "main.ttl"
    main.write_text(
        "@prefix owl: <http://www.w3.org/2002/07/owl#> .\n"
        "@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n"
        "<http://example.org/main> a owl:Ontology ; owl:imports <http://example.org/base> .\n"
        "<http://example.org/Dog> rdfs:subClassOf <http://example.org/Animal> .\n"
    )
    kg = load_knowledge_graph(main, use_cache=False)
    assert any("http://example.org/base" in w and "not fetched" in w for w in kg.warnings)
    base = tmp_path / "base.ttl"
    base.write_text(
        "@prefix owl: <http://www.w3.org/2002/07/owl#> .\n"
        "@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n"
        "<http://example.org/base> a owl:Ontology .\n"
        "<http://example.org/Animal> rdfs:subClassOf <http://example.org/Organism> .\n"
    )
    kg = load_knowledge_graph(main, imports=[base], use_cache=False)
    assert kg.warnings == []
    assert "http://example.org/Organism" in kg.node_iris


IDS_SCRIPT = """
import json, sys
from kgnet.kg.build import load_knowledge_graph
kg = load_knowledge_graph(sys.argv[1], use_cache=False)
print(json.dumps([kg.node_iris, kg.relation_names, kg.edge_index.tolist(), kg.edge_type.tolist()]))
"""


def test_identical_ids_in_fresh_processes(shoes_ttl: Path) -> None:
    runs = [
        subprocess.run(
            [sys.executable, "-c", IDS_SCRIPT, str(shoes_ttl)],
            capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout
        for seed in ("1", "2")
    ]
    assert runs[0] == runs[1]
    node_iris = json.loads(runs[0])[0]
    assert node_iris == sorted(node_iris)


def test_k_hop_subgraph_keeps_classes_ancestors_and_neighbours(shoes_ttl: Path) -> None:
    kg = load_knowledge_graph(shoes_ttl, use_cache=False)
    bound = kg.with_classes(["sneaker"], [kg.node_id(EX + "Sneaker")])
    zero = bound.k_hop_subgraph(0)
    assert {iri.split("#")[-1] for iri in zero.node_iris} == {"Sneaker", "Footwear"}
    one = bound.k_hop_subgraph(1)
    assert {iri.split("#")[-1] for iri in one.node_iris} == {"Sneaker", "Footwear", "RubberSole", "Boot"}
    assert one.node_iris[int(one.class_index[0])] == EX + "Sneaker"
    assert one.edge_index.max() < one.num_nodes
    two = bound.k_hop_subgraph(2)
    assert {"Sole", "Leather", "myBoot"} <= {iri.split("#")[-1] for iri in two.node_iris}
    assert torch.equal(two.class_mask().nonzero().flatten(), two.class_index)


def test_round_trip_save_load(tmp_path: Path, shoes_ttl: Path) -> None:
    kg = load_knowledge_graph(shoes_ttl, use_cache=False)
    kg.save(tmp_path / "kg.pt")
    again = type(kg).load(tmp_path / "kg.pt")
    assert again.node_iris == kg.node_iris and torch.equal(again.edge_index, kg.edge_index)
    assert again.literals == kg.literals


def test_hierarchy_cycles_and_self_loops_are_warned_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "cyclic.ttl"
    path.write_text(
        "@prefix ex: <http://example.org/c#> .\n@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n"
        "ex:Shoe rdfs:subClassOf ex:Footwear .\nex:Footwear rdfs:subClassOf ex:Clothing .\n"
        "ex:Clothing rdfs:subClassOf ex:Shoe .\n"  # a three-node cycle
        "ex:Bag rdfs:subClassOf ex:Bag .\n"  # a self-loop
        "ex:Bag rdfs:subClassOf ex:Accessory .\nex:Hat rdfs:subClassOf ex:Accessory .\n"
    )
    kg = load_knowledge_graph(path, use_cache=False)
    cycle = next(w for w in kg.warnings if "cycle" in w)
    assert all(EX.replace("shoes", "c") + n in cycle for n in ("Clothing", "Footwear", "Shoe"))
    assert "hierarchy metrics" in cycle and "Bag" not in cycle and "Hat" not in cycle
    loop = next(w for w in kg.warnings if "itself" in w)
    assert "http://example.org/c#Bag" in loop and "Shoe" not in loop
    # Binding, cutting and the hierarchy metrics still work on it.
    from kgnet.metrics.hierarchy import ClassHierarchy

    bound = kg.with_classes(["shoe", "bag", "hat"], [kg.node_id("http://example.org/c#" + n) for n in ("Shoe", "Bag", "Hat")])
    hierarchy = ClassHierarchy(bound.k_hop_subgraph(1))
    assert hierarchy.lca_height.shape == (3, 3)


def test_acyclic_hierarchy_has_no_cycle_warning(shoes_ttl: Path) -> None:
    kg = load_knowledge_graph(shoes_ttl, use_cache=False)
    assert not any("cycle" in w or "itself" in w for w in kg.warnings)
