"""WordNet 3.0 access and the RDF exporter, on the real WordNet (Debian packages or NLTK data)."""

from __future__ import annotations

import gzip
import logging
import shutil
from pathlib import Path

import pytest
from rdflib import OWL, RDF, RDFS, SKOS, Graph, Literal
from rdflib.compare import isomorphic

from kgnet.errors import DataMissingError, KgnetError
from kgnet.kg import wordnet
from kgnet.kg.vocab import KGNET, WN
from kgnet.kg.wordnet import export_ontology, load_wordnet, synset_of, wnid_of

DOG = "n02084071"
ENTITY = "n00001740"
EVEREST = "n09277010"  # an instance synset: Mount Everest, an instance of mountain peak
SHOE = "n04199027"


@pytest.fixture(scope="module")
def wn():
    """The real WordNet 3.0; tests that need it skip (with the reason) where it is missing."""
    load_wordnet.cache_clear()
    try:
        return load_wordnet()
    except DataMissingError as err:
        pytest.skip(str(err))


@pytest.fixture
def fresh_wordnet(monkeypatch):
    """Clear the cached reader before and after a test that changes where WordNet is found."""
    load_wordnet.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    load_wordnet.cache_clear()


@pytest.fixture(scope="module")
def dog_graph(wn) -> Graph:
    return export_ontology(wnids=[DOG, EVEREST, SHOE])


def test_wnids_round_trip(wn):
    dog = wn.synset("dog.n.01")
    assert wnid_of(dog) == DOG
    assert synset_of(DOG) == dog
    assert synset_of(ENTITY).name() == "entity.n.01"
    large = wn.synset("large.a.01")
    assert synset_of(wnid_of(large)) == large


@pytest.mark.parametrize("bad", ["dog", "n2084071", "x02084071", "n02084072"])
def test_bad_wnid_is_a_user_error(wn, bad):
    with pytest.raises(KgnetError, match=bad):
        synset_of(bad)


def test_hypernym_closure_reaches_entity(dog_graph):
    ancestors = set(dog_graph.transitive_objects(WN[DOG], RDFS.subClassOf))
    assert WN[ENTITY] in ancestors
    assert WN["n02083346"] in ancestors  # canine.n.02
    for node in ancestors:
        assert (node, RDF.type, OWL.Class) in dog_graph
        assert dog_graph.value(node, SKOS.definition) is not None


def test_instance_hypernym_is_rdf_type(dog_graph, wn):
    peak = wnid_of(wn.synset("mountain_peak.n.01"))
    assert (WN[EVEREST], RDF.type, WN[peak]) in dog_graph
    assert (WN[EVEREST], RDFS.subClassOf, WN[peak]) not in dog_graph
    assert WN[ENTITY] in set(dog_graph.transitive_objects(WN[peak], RDFS.subClassOf))


def test_meronyms_and_holonyms_point_whole_to_part(dog_graph, wn):
    heel = wnid_of(wn.synset("heel.n.01"))
    assert (WN[SHOE], KGNET.hasPart, WN[heel]) in dog_graph
    assert dog_graph.value(WN[heel], RDFS.label) == Literal("heel", lang="en")
    assert dog_graph.value(WN[heel], KGNET.wnid) == Literal(heel)
    # a neighbour gets text, not its own hypernyms
    assert dog_graph.value(WN[heel], RDFS.subClassOf) is None
    # holonym of a class: Everest is part of the Himalayas
    himalayas = wnid_of(wn.synset("himalayas.n.01"))
    assert (WN[himalayas], KGNET.hasPart, WN[EVEREST]) in dog_graph
    # member holonym of a synset in the closure: Canis has member dog
    canis = wnid_of(wn.synset("canis.n.01"))
    assert (WN[canis], KGNET.hasMember, WN[DOG]) in dog_graph


def test_labels_and_definitions(dog_graph):
    dog = WN[DOG]
    assert dog_graph.value(dog, RDFS.label) == Literal("dog", lang="en")
    assert dog_graph.value(dog, SKOS.prefLabel) == Literal("dog", lang="en")
    assert set(dog_graph.objects(dog, SKOS.altLabel)) == {
        Literal("domestic dog", lang="en"),
        Literal("Canis familiaris", lang="en"),
    }
    assert "Canis" in str(dog_graph.value(dog, SKOS.definition))
    assert dog_graph.value(dog, KGNET.wnid) == Literal(DOG)
    assert dog_graph.value(dog, KGNET.lexname) == Literal("noun.animal")
    header = next(dog_graph.subjects(RDF.type, OWL.Ontology))
    assert "WordNet 3.0" in str(dog_graph.value(header, RDFS.comment))
    # a wnids export binds no class names
    assert not list(dog_graph.subjects(KGNET.classIndex, None))


def test_attributes(wn):
    size = wnid_of(wn.synset("size.n.01"))
    graph = export_ontology(wnids=[size])
    large = wnid_of(wn.synset("large.a.01"))
    assert (WN[size], KGNET.attribute, WN[large]) in graph
    assert graph.value(WN[large], RDFS.label) == Literal("large", lang="en")


def test_dataset_export_binds_class_index_and_name(wn):
    graph = export_ontology(dataset="fashion_mnist")
    by_index = {int(i): s for s, i in graph.subject_objects(KGNET.classIndex)}
    assert sorted(by_index) == list(range(10))
    assert graph.value(by_index[9], KGNET.className) == Literal("Ankle boot")
    assert graph.value(by_index[9], KGNET.wnid) == Literal("n02872752")
    assert graph.value(by_index[6], RDFS.label) == Literal("shirt", lang="en")


def test_classes_export_logs_each_choice(wn, caplog):
    with caplog.at_level(logging.WARNING, logger="kgnet.kg.wordnet"):
        graph = export_ontology(classes=["dog", "golden retriever"])
    assert "dog.n.01" in caplog.text and "golden_retriever.n.01" in caplog.text
    assert "domesticated" in caplog.text  # the gloss is shown so a person can check
    retriever = wnid_of(wn.synset("golden_retriever.n.01"))
    assert graph.value(WN[retriever], KGNET.className) == Literal("golden retriever")
    assert graph.value(WN[retriever], KGNET.classIndex) == Literal(1)
    assert graph.value(WN[retriever], RDFS.label) == Literal("golden retriever", lang="en")


def test_classes_export_errors(wn):
    with pytest.raises(KgnetError, match="'T-shirt/top'.*'qwxzy'"):
        export_ontology(classes=["dog", "T-shirt/top", "qwxzy"])
    with pytest.raises(KgnetError, match="same WordNet synset"):
        export_ontology(classes=["dog", "domestic dog"])


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"wnids": [DOG], "classes": ["dog"]}, {"dataset": "cifar10", "all_nouns": True}],
)
def test_exactly_one_source(kwargs):
    with pytest.raises(KgnetError, match="exactly one"):
        export_ontology(**kwargs)


def test_unknown_output_suffix(tmp_path):
    with pytest.raises(KgnetError, match="suffix"):
        export_ontology(wnids=[DOG], out=tmp_path / "dog.txt")
    assert not list(tmp_path.iterdir())


def test_export_is_byte_identical(wn, tmp_path):
    first = tmp_path / "a.ttl"
    second = tmp_path / "b.ttl"
    export_ontology(dataset="cifar10", out=first)
    export_ontology(dataset="cifar10", out=second)
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize("suffix", [".nt", ".owl", ".jsonld.gz", ".ttl.gz"])
def test_formats_are_reproducible_and_parse_back(dog_graph, tmp_path, suffix):
    first, second = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
    wordnet.write_graph(dog_graph, first)
    wordnet.write_graph(dog_graph, second)
    assert first.read_bytes() == second.read_bytes()
    data = first.read_bytes()
    if suffix.endswith(".gz"):
        data = gzip.decompress(data)
    fmt = {".nt": "nt", ".owl": "xml", ".jsonld.gz": "json-ld", ".ttl.gz": "turtle"}[suffix]
    assert isomorphic(Graph().parse(data=data.decode("utf-8"), format=fmt), dog_graph)


@pytest.mark.slow
def test_all_nouns(wn, tmp_path):
    out = tmp_path / "nouns.nt"
    graph = export_ontology(all_nouns=True, out=out)
    assert len(set(graph.subjects(KGNET.wnid, None))) == wordnet.NUM_NOUN_SYNSETS
    assert (WN[DOG], RDFS.subClassOf, WN["n02083346"]) in graph
    assert (WN[EVEREST], RDF.type, WN[wnid_of(wn.synset("mountain_peak.n.01"))]) in graph
    assert (WN[SHOE], KGNET.hasPart, WN[wnid_of(wn.synset("heel.n.01"))]) in graph
    assert out.stat().st_size > 10_000_000
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines == sorted(lines) and len(lines) == len(graph)


def test_output_paths_are_not_left_half_written(wn, tmp_path):
    out = tmp_path / "sub" / "dog.ttl"
    export_ontology(wnids=[DOG], out=out)
    assert [p.name for p in out.parent.iterdir()] == ["dog.ttl"]
    assert Path(out).stat().st_mode & 0o044  # readable by others, like any shipped file


# These change where WordNet is found, so they come last: the reader is reloaded after them.


def test_lexnames_file():
    lines = wordnet.lexnames_text().splitlines()
    assert len(lines) == 45
    assert lines[0] == "00\tadj.all\t3"
    assert lines[3] == "03\tnoun.Tops\t1"
    assert lines[44] == "44\tadj.ppl\t3"


def test_debian_layout_from_an_empty_cache(fresh_wordnet, tmp_path):
    if not (wordnet.DEBIAN_WORDNET_DIR / "index.sense").is_file():
        pytest.skip("Debian packages wordnet-base and wordnet-sense-index are not installed")
    fresh_wordnet.setenv("KGNET_CACHE", str(tmp_path / "cache"))
    fresh_wordnet.setenv(wordnet.WORDNET_DIR_ENV, str(wordnet.DEBIAN_WORDNET_DIR))
    reader = load_wordnet()
    corpus = tmp_path / "cache" / "nltk_data" / "corpora" / "wordnet"
    assert (corpus / "lexnames").read_text() == wordnet.lexnames_text()
    assert (corpus / "index.sense").is_file()
    assert reader.synset("dog.n.01").lexname() == "noun.animal"
    assert reader.synset("dog.n.01").offset() == 2084071
    assert reader.lemma_from_key("dog%1:05:00::").synset().name() == "dog.n.01"  # index.sense
    assert load_wordnet() is reader  # cached


def test_missing_wordnet_says_how_to_get_it(fresh_wordnet, tmp_path):
    fresh_wordnet.setenv("KGNET_CACHE", str(tmp_path / "cache"))
    fresh_wordnet.setenv(wordnet.WORDNET_DIR_ENV, str(tmp_path))
    with pytest.raises(DataMissingError) as err:
        load_wordnet()
    message = str(err.value)
    assert "apt-get install wordnet-base wordnet-sense-index" in message
    assert "python -m nltk.downloader wordnet" in message


def test_missing_sense_index_names_the_package(fresh_wordnet, tmp_path):
    if not (wordnet.DEBIAN_WORDNET_DIR / "data.noun").is_file():
        pytest.skip("Debian package wordnet-base is not installed")
    source = tmp_path / "dict"
    source.mkdir()
    for name in wordnet._REQUIRED_FILES:
        if name != "index.sense":
            (source / name).symlink_to(wordnet.DEBIAN_WORDNET_DIR / name)
    fresh_wordnet.setenv("KGNET_CACHE", str(tmp_path / "cache"))
    fresh_wordnet.setenv(wordnet.WORDNET_DIR_ENV, str(source))
    with pytest.raises(DataMissingError, match="index.sense.*wordnet-sense-index"):
        load_wordnet()


def test_nltk_data_comes_first(fresh_wordnet, tmp_path):
    """A user's `python -m nltk.downloader wordnet` is used as it is, nothing copied."""
    if not (wordnet.DEBIAN_WORDNET_DIR / "index.sense").is_file():
        pytest.skip("Debian packages wordnet-base and wordnet-sense-index are not installed")
    import nltk.data

    corpus = tmp_path / "nltk_data" / "corpora" / "wordnet"
    corpus.mkdir(parents=True)
    for name in wordnet._REQUIRED_FILES:
        shutil.copyfile(wordnet.DEBIAN_WORDNET_DIR / name, corpus / name)
    (corpus / "lexnames").write_text(wordnet.lexnames_text())
    fresh_wordnet.setattr(nltk.data, "path", [str(tmp_path / "nltk_data")])
    fresh_wordnet.delenv(wordnet.WORDNET_DIR_ENV, raising=False)
    fresh_wordnet.setenv("KGNET_CACHE", str(tmp_path / "cache"))
    reader = load_wordnet()
    assert Path(str(reader.root)).resolve() == corpus.resolve()
    assert not (tmp_path / "cache" / "nltk_data").exists()
    assert reader.synset("dog.n.01").offset() == 2084071
