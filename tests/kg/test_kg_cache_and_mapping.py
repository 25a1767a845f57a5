"""The compiled-graph cache (hit, invalidation) and binding dataset classes to nodes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import run_cli
from kgnet.errors import ClassMappingError
from kgnet.kg import build
from kgnet.kg.build import build_class_graph, graph_cache_key, load_knowledge_graph
from kgnet.kg.class_mapping import bind_classes
from kgnet.kg.text_features import encode_texts

ANIMALS_TTL = """\
@prefix ex: <http://example.org/zoo#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
@prefix kgnet: <urn:kgnet:> .
ex:Animal rdfs:label "animal" .
ex:Dog rdfs:subClassOf ex:Animal ; rdfs:label "dog" ; kgnet:wnid "n02084071" .
ex:Cat rdfs:subClassOf ex:Animal ; skos:prefLabel "domestic cat"@en ; skos:altLabel "house cat" .
ex:Crane1 rdfs:subClassOf ex:Animal ; rdfs:label "crane" ; rdfs:comment "a wading bird" .
ex:Crane2 rdfs:label "crane" ; rdfs:comment "a lifting machine" .
ex:Horse rdfs:subClassOf ex:Animal ; ex:classCode "H7" .
"""


@pytest.fixture
def zoo(tmp_path: Path) -> Path:
    path = tmp_path / "zoo.ttl"
    path.write_text(ANIMALS_TTL)
    return path


def test_cache_hit_skips_parsing(zoo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_knowledge_graph(zoo)
    calls = []
    monkeypatch.setattr(build.load_mod, "load_ontology", lambda *a, **k: calls.append(a) or 1 / 0)
    second = load_knowledge_graph(zoo)  # must come from the cache: parsing would raise
    assert calls == []
    assert second.node_iris == first.node_iris and torch.equal(second.edge_index, first.edge_index)


def test_cache_invalidated_by_content_format_and_imports(zoo: Path, tmp_path: Path) -> None:
    key = graph_cache_key(zoo)
    assert graph_cache_key(zoo) == key
    load_knowledge_graph(zoo)
    zoo.write_text(ANIMALS_TTL + "<http://example.org/zoo#Puppy> rdfs:subClassOf <http://example.org/zoo#Dog> .\n")
    assert graph_cache_key(zoo) != key
    kg = load_knowledge_graph(zoo)
    assert "http://example.org/zoo#Puppy" in kg.node_iris  # not the stale entry
    assert graph_cache_key(zoo, fmt="turtle") != graph_cache_key(zoo)
    extra = tmp_path / "extra.ttl"
    extra.write_text("<http://example.org/zoo#Fox> <http://www.w3.org/2000/01/rdf-schema#label> \"fox\" .\n")
    assert graph_cache_key(zoo, imports=[extra]) != graph_cache_key(zoo)


def test_damaged_cache_entry_is_rebuilt(zoo: Path) -> None:
    load_knowledge_graph(zoo)
    from kgnet.paths import cache_dir

    entry = cache_dir() / "graphs" / f"{graph_cache_key(zoo)}.pt"
    entry.write_bytes(b"not a torch file")
    assert load_knowledge_graph(zoo).num_nodes == 6


def test_bind_by_label_wnid_alt_label_and_predicate(zoo: Path) -> None:
    kg = load_knowledge_graph(zoo)
    bound = bind_classes(kg, ["Dog", "house_cat"])
    assert [bound.node_iris[i].split("#")[1] for i in bound.class_index] == ["Dog", "Cat"]
    by_wnid = bind_classes(kg, ["n02084071"])
    assert by_wnid.node_iris[int(by_wnid.class_index[0])].endswith("#Dog")
    by_card_wnid = bind_classes(kg, ["doggo"], wnids=["n02084071"])
    assert by_card_wnid.node_iris[int(by_card_wnid.class_index[0])].endswith("#Dog")
    by_predicate = bind_classes(kg, ["H7"], predicate="http://example.org/zoo#classCode")
    assert by_predicate.node_iris[int(by_predicate.class_index[0])].endswith("#Horse")


def test_mapping_file_resolves_ambiguity(zoo: Path, tmp_path: Path) -> None:
    kg = load_knowledge_graph(zoo)
    mapping = tmp_path / "map.yaml"
    mapping.write_text("crane: http://example.org/zoo#Crane1\ndog: ex:Dog\n")
    bound = bind_classes(kg, ["crane", "dog"], mapping_file=mapping)
    assert [bound.node_iris[i].split("#")[1] for i in bound.class_index] == ["Crane1", "Dog"]
    csv_map = tmp_path / "map.csv"
    csv_map.write_text("crane,http://example.org/zoo#Crane2\n")
    bound = bind_classes(kg, ["crane"], mapping_file=csv_map)
    assert bound.node_iris[int(bound.class_index[0])].endswith("#Crane2")


def test_unmapped_and_ambiguous_listed_together(zoo: Path) -> None:
    kg = load_knowledge_graph(zoo)
    with pytest.raises(ClassMappingError) as err:
        bind_classes(kg, ["dog", "dgo", "crane", "unicorn"], source="zoo.ttl")
    message = str(err.value)
    assert "no node for 2 classes" in message
    assert "'dgo' (close: 'dog')" in message and "'unicorn'" in message
    assert "'crane' matches 2 nodes" in message and "wading bird" in message and "lifting machine" in message
    assert "class mapping file" in message


def test_two_classes_on_one_node_is_an_error(zoo: Path) -> None:
    kg = load_knowledge_graph(zoo)
    with pytest.raises(ClassMappingError, match="bind to the same node"):
        bind_classes(kg, ["domestic cat", "house cat"])


def test_build_class_graph_cuts_to_k_hops(zoo: Path) -> None:
    kg = build_class_graph(zoo, ["dog"], hops=0)
    assert [iri.split("#")[1] for iri in kg.node_iris] == ["Animal", "Dog"]
    wider = build_class_graph(zoo, ["dog"], hops=2)
    assert wider.num_nodes == 5  # Animal's other children, but not the machine crane


def test_check_cli_reports_unmapped_classes(tmp_path: Path) -> None:
    ontology = tmp_path / "fashion.ttl"
    ontology.write_text(
        "@prefix ex: <http://example.org/> .\n@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n"
        'ex:Trouser rdfs:label "trouser" .\nex:Dress rdfs:label "dress" .\n'
    )
    result = run_cli("kgnet.kg", "check", str(ontology), "--dataset", "fashion_mnist")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "no node for 8 classes" in result.stderr and "'Ankle boot'" in result.stderr


def test_text_features_cached_and_keyed_by_text() -> None:
    texts = ["dog: a domesticated canid", "cat: a small feline"]
    first = encode_texts(texts, progress=False)
    assert first.shape == (2, 384) and torch.allclose(first.norm(dim=1), torch.ones(2), atol=1e-5)
    assert torch.equal(encode_texts(texts, progress=False), first)
    changed = encode_texts(["dog: a domesticated canid", "cat: a large feline"], progress=False)
    assert torch.equal(changed[0], first[0]) and not torch.equal(changed[1], first[1])
    # Similar meanings land closer than unrelated ones: the vectors carry the text.
    puppy = encode_texts(["puppy: a young dog"], progress=False)[0]
    assert puppy @ first[0] > puppy @ first[1]


def test_encoding_writes_no_progress_bars_into_a_log(capfd: pytest.CaptureFixture) -> None:
    """Issue 37: `make demo > log` held sentence-transformers' and transformers' carriage-return
    bars ("Loading weights", "Batches"). With stderr not a terminal, loading and encoding 100
    texts (two batches, the bar's threshold) write no bar."""
    from kgnet.kg.text_features import load_text_model

    load_text_model.cache_clear()  # the model is loaded here, as a run would, not by another test
    encode_texts([f"garment {i}: a thing to wear" for i in range(100)], use_cache=False, progress=True)
    err = capfd.readouterr().err
    assert "\r" not in err and "Loading weights" not in err and "Batches" not in err


# --- A mapping file's mistakes point at the file, the line and the IRI ----------------------

ZOO_CLASSES = ["dog", "cat", "horse"]


def _zoo_map(tmp_path: Path, text: str, suffix: str = ".yaml") -> Path:
    path = tmp_path / f"zoo-map{suffix}"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("suffix", "line"), [(".yaml", 3), (".csv", 3), (".json", 4)])
def test_mapping_to_an_iri_the_ontology_lacks_names_file_line_and_iri(
    zoo: Path, tmp_path: Path, suffix: str, line: int
) -> None:
    rows = [("dog", "http://example.org/zoo#Dog"), ("cat", "http://example.org/zoo#Kat"),
            ("horse", "http://example.org/zoo#Horse")]
    text = {
        ".yaml": "# zoo classes\n" + "".join(f"{c}: {n}\n" for c, n in rows),
        ".csv": "# zoo classes\n" + "".join(f"{c},{n}\n" for c, n in rows),
        ".json": "{\n  \"_comment\": \"zoo\",\n" + ",\n".join(f'  "{c}": "{n}"' for c, n in rows) + "\n}\n",
    }[suffix]
    mapping = _zoo_map(tmp_path, text, suffix)
    kg = load_knowledge_graph(zoo)
    with pytest.raises(ClassMappingError) as err:
        bind_classes(kg, ZOO_CLASSES, mapping_file=mapping, source="zoo.ttl")
    message = str(err.value)
    assert f"{mapping} line {line}" in message and "http://example.org/zoo#Kat" in message and "'cat'" in message
    assert "<http://example.org/zoo#Cat>" in message  # the close IRI the user probably meant
    assert "give a class mapping file" not in message  # one was given


def test_mapping_two_classes_to_one_node_names_both_lines(zoo: Path, tmp_path: Path) -> None:
    mapping = _zoo_map(tmp_path, "dog: http://example.org/zoo#Dog\ncat: ex:Dog\nhorse: ex:Horse\n")
    kg = load_knowledge_graph(zoo)
    with pytest.raises(ClassMappingError) as err:
        bind_classes(kg, ZOO_CLASSES, mapping_file=mapping)
    message = str(err.value)
    assert f"{mapping} lines 1 and 2" in message and "http://example.org/zoo#Dog" in message
    assert "'dog'" in message and "'cat'" in message
    assert "give a class mapping file" not in message


def test_mapping_entries_for_classes_not_in_the_dataset_are_a_warning(zoo: Path, tmp_path: Path) -> None:
    mapping = _zoo_map(tmp_path, "dog: ex:Dog\ncat: ex:Cat\nunicorn: ex:Horse\nhorse: ex:Horse\ngriffin: ex:Crane1\n")
    kg = load_knowledge_graph(zoo)
    bound = bind_classes(kg, ZOO_CLASSES, mapping_file=mapping)
    assert [bound.node_iris[i].split("#")[1] for i in bound.class_index] == ["Dog", "Cat", "Horse"]
    warning = next(w for w in bound.warnings if "unicorn" in w)
    assert str(mapping) in warning and "'unicorn' (line 3)" in warning and "'griffin' (line 5)" in warning
    assert not any("unicorn" in w for w in kg.warnings)  # the unbound graph is untouched


def test_check_cli_prints_mapping_warnings(tmp_path: Path, zoo: Path, capsys: pytest.CaptureFixture) -> None:
    from kgnet.kg.__main__ import main

    card = tmp_path / "zoo-card.yaml"
    card.write_text(
        "name: zoo\ntitle: Zoo\ndescription: three animals\nformat: imagefolder\nsource: a test\n"
        "ontology: zoo.ttl\nclasses:\n  - {name: dog, wnid: n02084071}\n  - {name: cat, wnid: n02121808}\n"
        "  - {name: horse, wnid: n02374451}\n"
    )
    mapping = _zoo_map(tmp_path, "dog: ex:Dog\ncat: ex:Cat\nhorse: ex:Horse\nunicorn: ex:Horse\n")
    assert main(["check", str(zoo), "--dataset", str(card), "--class-map", str(mapping)]) == 0
    out = capsys.readouterr().out
    assert "warning:" in out and "'unicorn' (line 4)" in out
