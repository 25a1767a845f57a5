"""A trained model's weights carried into a model of an edited ontology (`kgnet.models.transfer`,
`kgnet.engine.extend`): rows follow their node's IRI, new nodes and classes are built, and a new
class is scored from its concepts, a new concept from its text (issue 34)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from kgnet.config import Config
from kgnet.data.preprocess import resolve_preprocessing
from kgnet.engine.extend import extend_release, new_class_names
from kgnet.errors import KgnetError
from kgnet.kg.build import build_class_graph
from kgnet.kg.text_features import encode_texts
from kgnet.models import create_model
from kgnet.models.transfer import carry_over
from kgnet.release import load_release, save_release
from kgnet.variants import VARIANTS

BASE = """\
@prefix : <urn:test:shop:> .
@prefix kgnet: <urn:kgnet:> .
@prefix owl: <http://www.w3.org/2002/07/owl#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .

:hasPart a owl:ObjectProperty ; rdfs:label "has part" .
:Item a owl:Class ; rdfs:label "item" ; rdfs:comment "Something sold in the shop." .
:Part a owl:Class ; rdfs:label "part" ; rdfs:comment "A visible component of an item." .
:Leg rdfs:subClassOf :Part ; rdfs:label "leg" ; rdfs:comment "A long tube of cloth covering one leg." .
:Sole rdfs:subClassOf :Part ; rdfs:label "sole" ; rdfs:comment "The flat bottom of a shoe that touches the ground." .
:Strap rdfs:subClassOf :Part ; rdfs:label "strap" ; rdfs:comment "A narrow band used to carry or fasten." .
:Trouser rdfs:subClassOf :Item ; kgnet:className "Trouser" ; rdfs:label "trouser" ;
    rdfs:comment "Two long legs joined at the waist." ;
    rdfs:subClassOf [ a owl:Restriction ; owl:onProperty :hasPart ; owl:someValuesFrom :Leg ] .
:Sneaker rdfs:subClassOf :Item ; kgnet:className "Sneaker" ; rdfs:label "sneaker" ;
    rdfs:comment "A low sports shoe with a thick rubber sole." ;
    rdfs:subClassOf [ a owl:Restriction ; owl:onProperty :hasPart ; owl:someValuesFrom :Sole ] .
:Bag rdfs:subClassOf :Item ; kgnet:className "Bag" ; rdfs:label "bag" ;
    rdfs:comment "A container with a handle or strap." ;
    rdfs:subClassOf [ a owl:Restriction ; owl:onProperty :hasPart ; owl:someValuesFrom :Strap ] .
"""
#: What a user adds: a class (Sandal) and a concept node it uses (Buckle, IRI sorting first, so
#: every node id after it shifts).
ADDED = """
:ABuckle rdfs:subClassOf :Part ; rdfs:label "buckle" ; rdfs:comment "{text}" .
:Sandal rdfs:subClassOf :Item ; kgnet:className "Sandal" ; rdfs:label "sandal" ;
    rdfs:comment "An open shoe of straps over a sole." ;
    rdfs:subClassOf [ a owl:Restriction ; owl:onProperty :hasPart ; owl:someValuesFrom :Sole ] ,
                    [ a owl:Restriction ; owl:onProperty :hasPart ; owl:someValuesFrom :ABuckle ] .
"""
CLASSES = ["Trouser", "Sneaker", "Bag"]


def _edited(folder: Path, text: str) -> Path:
    path = folder / f"edited-{abs(hash(text))}.ttl"
    path.write_text(BASE + ADDED.format(text=text))
    return path


def _release(folder: Path, variant: str):
    """A release of `variant` over the base ontology (built, not trained: the mechanism is the same)."""
    (folder / "base.ttl").write_text(BASE)
    config = Config()
    graph = build_class_graph(folder / "base.ttl", CLASSES, hops=2, use_cache=False)
    texts = encode_texts(graph.node_texts, config.graph_encoder.text_model)
    model = create_model(config, graph, texts, variant=variant, in_chans=1, image_size=28)
    with torch.no_grad():  # trained-looking corrections: the carried rows must land on their own nodes
        for name, p in model.named_parameters():
            if name.endswith("input.embedding.weight"):
                p.normal_()
    save_release(folder / variant, model, variant=VARIANTS[variant], config=config, class_names=CLASSES, wnids=None,
                 seen_classes=[0, 1, 2], unseen_classes=[], preprocessing=resolve_preprocessing(config.data),
                 graph=graph, text_features=texts)
    return load_release(folder / variant)


@pytest.fixture(scope="module")
def inductive(tmp_path_factory):
    return _release(tmp_path_factory.mktemp("inductive"), "kgnet-inductive")


def test_an_edited_ontology_adds_its_new_class_and_the_new_concepts_text_moves_its_logit(inductive, tmp_path):
    images = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    clasp = extend_release(inductive, _edited(tmp_path, "A small metal clasp that fastens a strap."))
    feather = extend_release(inductive, _edited(tmp_path, "A bright red feather glued on top."))
    assert clasp.class_names == [*CLASSES, "Sandal"] and clasp.unseen_classes == [3] and clasp.seen_classes == [0, 1, 2]
    with torch.no_grad():
        a, b = clasp.model(images).logits, feather.model(images).logits
    assert a.shape == (4, 4) and torch.isfinite(a).all()
    # the new concept's vector comes from its text through the trained R-GCN
    assert (a[:, 3] - b[:, 3]).abs().max() > 1e-3
    # a trained node's correction moved with its IRI, though every id after ABuckle shifted by one
    old, new = inductive.model.graph_encoder, clasp.model.graph_encoder
    for iri in ("urn:test:shop:Sole", "urn:test:shop:Trouser"):
        i, j = inductive.graph.node_id(iri), clasp.graph.node_id(iri)
        assert j > i
        row = lambda enc, n: enc.encoder.input.embedding.weight[enc.local_ids(torch.tensor([n]))[0]]  # noqa: E731
        assert torch.equal(row(old, i), row(new, j))
    # the new node's correction starts at zero: the graph alone predicts it
    buckle = clasp.graph.node_id("urn:test:shop:ABuckle")
    assert new.encoder.input.embedding.weight[new.local_ids(torch.tensor([buckle]))[0]].abs().sum() == 0


@pytest.mark.parametrize("variant", ["kgnet", "kgnet-permuted"])
def test_free_concept_vectors_do_not_read_a_new_concepts_text(tmp_path, variant):
    """The default kgnet's concept vectors are free parameters: a concept added after training has
    none that was trained, whatever its text says (the inductive encoder is what reads it). The
    trained classes score as before, under the permuted control too (they keep their derangement)."""
    release = _release(tmp_path, variant)
    images = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a = extend_release(release, _edited(tmp_path, "A small metal clasp.")).model(images).logits
        b = extend_release(release, _edited(tmp_path, "A red feather.")).model(images).logits
        before = release.model(images).logits
    assert torch.equal(a, b)
    assert torch.allclose(a[:, :3], before, atol=1e-5)  # the trained classes score as before


def test_new_classes_are_the_class_names_the_edit_declares(tmp_path):
    assert new_class_names(_edited(tmp_path, "a clasp"), CLASSES) == ["Sandal"]


def test_weights_of_another_shape_are_refused_by_name(inductive):
    config = Config()
    config.model.embed_dim = 32
    other = create_model(config, inductive.graph, None, variant="kgnet", in_chans=1, image_size=28)
    with pytest.raises(KgnetError, match=r"do not fit .*head\.proj\.weight.*model\.embed_dim"):
        carry_over(inductive.model, other, source_graph=inductive.graph, target_graph=inductive.graph,
                   source_classes=CLASSES, target_classes=CLASSES, what="model.init_from x")


def test_a_renamed_class_is_refused(inductive, tmp_path):
    renamed = tmp_path / "renamed.ttl"
    renamed.write_text(BASE.replace('kgnet:className "Bag" ; rdfs:label "bag"', 'kgnet:className "Handbag"'))
    names = ["Trouser", "Sneaker", "Handbag"]
    graph = build_class_graph(renamed, names, hops=2, use_cache=False)
    model = create_model(Config(), graph, None, variant="kgnet", in_chans=1, image_size=28)
    with pytest.raises(KgnetError, match="renamed.*'Bag' is now 'Handbag'"):
        carry_over(inductive.model, model, source_graph=inductive.graph, target_graph=graph,
                   source_classes=CLASSES, target_classes=names, what="model.init_from x")
    with pytest.raises(KgnetError, match=r"trained classes \['Bag'\] are not among"):
        extend_release(inductive, renamed, names)


def test_predict_takes_an_edited_ontology(inductive, tmp_path, capsys):
    from PIL import Image

    from kgnet.predict import main

    image = tmp_path / "shoe.png"
    Image.fromarray((torch.rand(28, 28, generator=torch.Generator().manual_seed(2)) * 255).byte().numpy()).save(image)
    edited = _edited(tmp_path, "A small metal clasp that fastens a strap.")
    assert main(["--run", str(inductive.folder.parent), "--variant", "kgnet-inductive", "--ontology", str(edited),
                 "--top-k", "4", str(image)]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:5]]
    assert sorted(listed) == sorted([*CLASSES, "Sandal"])


def test_a_control_whose_draws_depend_on_the_whole_graph_is_not_extended(tmp_path):
    release = _release(tmp_path, "kgnet-shuffled")
    with pytest.raises(KgnetError, match="shuffled control of kgnet-shuffled draws from the whole graph"):
        extend_release(release, _edited(tmp_path, "a clasp"))
