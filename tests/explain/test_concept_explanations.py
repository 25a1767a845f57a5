"""Explanations of a concept head: contributions that removal confirms to the last digit, the
deletion curve and concept precision on hand-built numbers, and ontology paths as text."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kgnet.config import load_config
from kgnet.explain.concept_removal import concept_precision, concept_removal
from kgnet.explain.contributions import MATTERS, class_map_images, read_concepts, region_maps, top_contributions
from kgnet.explain.ontology_paths import ontology_paths, relation_label
from kgnet.kg.graph import KnowledgeGraph
from kgnet.models.class_concepts import ClassConcepts, class_concept_matrix
from kgnet.models.heads.concept import ConceptHead
from kgnet.models import NoGraphEncoder, NoInfusion, create_model


def _graph() -> KnowledgeGraph:
    """Sandal, Sneaker -> Footwear -hasPart-> Sole; Sandal -hasPart-> Strap; Sneaker -hasPart-> Laces;
    Shirt -> Top -hasPart-> Sleeve; Footwear, Top -> Garment."""
    names = ["Footwear", "Garment", "Laces", "Sandal", "Shirt", "Sleeve", "Sneaker", "Sole", "Strap", "Top"]
    sub, part = 0, 1
    edges = [(3, 0, sub), (6, 0, sub), (4, 9, sub), (0, 1, sub), (9, 1, sub),
             (0, 7, part), (3, 8, part), (6, 2, part), (9, 5, part)]
    src, dst, rel = (torch.tensor(column) for column in zip(*edges))
    graph = KnowledgeGraph(
        node_iris=[f"http://example.org/g#{n}" for n in names], node_labels=names, node_texts=names,
        node_names=[[n] for n in names],
        edge_index=torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], 1),
        edge_type=torch.cat([rel, rel + 2]),
        relation_names=["rdfs:subClassOf", "g:hasPart", "^rdfs:subClassOf", "^g:hasPart"],
        relation_iris=["http://www.w3.org/2000/01/rdf-schema#subClassOf", "http://example.org/g#hasPart"])
    return graph.with_classes(["Sandal", "Shirt", "Sneaker"], [3, 4, 6])


def _hand_head(scale: float = 2.0) -> ConceptHead:
    """Two classes over three concepts: A = [[0.6, 0.4, 0], [0, 0.5, 0.5]]."""
    weights = torch.tensor([[0.6, 0.4, 0.0], [0.0, 0.5, 0.5]])
    return ConceptHead(in_dim=4, embed_dim=4, matrix=ClassConcepts.of_weights(weights), init_scale=scale).eval()


def _softmax(logits: list[float]) -> np.ndarray:
    e = np.exp(np.array(logits) - max(logits))
    return e / e.sum()


def test_removal_drop_and_deletion_curve_follow_the_contributions_exactly() -> None:
    # c = [1, 0.5, 0.25], scale 2: s0 = 2 (0.6 + 0.2) = 1.6, s1 = 2 (0.25 + 0.125) = 0.75 -> class 0.
    # Contributions to class 0: [1.2, 0.4, 0]; removing concept 0 leaves s = [0.4, 0.75].
    head = _hand_head()
    c = torch.tensor([[1.0, 0.5, 0.25]])
    result = concept_removal(head, c, seed=0)
    p = _softmax([1.6, 0.75])[0]
    assert result["predicted"][0] == 0 and result["top"][0] == 0
    assert result["probability"][0] == pytest.approx(p, abs=1e-6)
    assert result["top_drop"][0] == pytest.approx(p - _softmax([0.4, 0.75])[0], abs=1e-6)
    removed = {1: [1.6 - 0.4, 0.75 - 0.5], 2: [1.6, 0.75 - 0.25]}[int(result["random"][0])]
    assert result["random_drop"][0] == pytest.approx(p - _softmax(removed)[0], abs=1e-6)
    # contribution order 0, 1, 2: s after 1, 2, 3 removals = [0.4, 0.75], [0, 0.25], [0, 0]
    curve = [p, _softmax([0.4, 0.75])[0], _softmax([0.0, 0.25])[0], 0.5]
    np.testing.assert_allclose(result["deletion_curve"][0], curve, atol=1e-6)
    trapezoid = sum((a + b) / 2 for a, b in zip(curve, curve[1:])) / 3
    assert result["deletion"][0] == pytest.approx(trapezoid, abs=1e-6)


def test_a_concept_no_class_uses_is_never_the_random_one() -> None:
    weights = torch.tensor([[0.0, 0.6, 0.4, 0.0], [0.0, 0.0, 0.5, 0.5]])  # column 0: no class scores with it
    head = ConceptHead(in_dim=4, embed_dim=4, matrix=ClassConcepts.of_weights(weights), init_scale=2.0).eval()
    c = torch.rand(200, 4, generator=torch.Generator().manual_seed(0))
    result = concept_removal(head, c, seed=1)
    assert set(result["random"].tolist()) <= {1, 2, 3} and (result["random"] != result["top"]).all()
    assert result["deletion_curve"].shape == (200, 4)  # 0..3 of the 3 concepts in use removed


@pytest.mark.parametrize("variant", ["kgnet", "kgnet-composed"])
def test_explained_contribution_is_what_removal_takes_from_the_model_score(variant: str) -> None:
    """Through the explain path on a real model, the default kgnet (the concept head alone) and
    kgnet-composed (R-GCN concept vectors, infusion): the figure's number for a concept is the
    exact fall of the class's logit when that concept is removed."""
    config = load_config(None, ["model.embed_dim=16", "concept_head.hops=2"])
    graph = _graph()
    model = create_model(config, graph, variant=variant, in_chans=1, image_size=28).eval()
    assert isinstance(model.graph_encoder, NoGraphEncoder) is isinstance(model.infusion, NoInfusion) is (
        variant == "kgnet")
    images = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    reading = read_concepts(model, images)
    with torch.no_grad():
        out = model(images)
    torch.testing.assert_close(reading.logits, out.logits)
    torch.testing.assert_close(reading.activations, out.concepts)
    paths = ontology_paths(graph, model.head.matrix)
    everything = len(model.head.matrix.names)  # ask for every concept: none may be padding
    explained, predicted, runner_up = top_contributions(model, reading, paths, predicted=everything,
                                                        runner_up=everything)
    assert torch.equal(predicted, out.logits.argmax(dim=1))
    weights = model.head.weights
    for i, concepts in enumerate(explained):
        p, r = int(predicted[i]), int(runner_up[i])
        mine = [c for c in concepts if not c.for_runner_up]
        own = [c for c in concepts if c.for_runner_up]
        assert concepts == mine + own  # the predicted class's first, then the runner-up's own
        assert [c.contribution for c in mine] == sorted((c.contribution for c in mine), reverse=True)
        assert [c.runner_up for c in own] == sorted((c.runner_up for c in own), reverse=True)
        # exactly the concepts the ontology links to each class: nothing adding 0 is listed
        assert {c.position for c in mine} == set(torch.nonzero(weights[p]).flatten().tolist())
        assert {c.position for c in own} == set(torch.nonzero((weights[r] != 0) & (weights[p] == 0)).flatten().tolist())
        assert all(c.contribution != 0 for c in mine) and all(c.contribution == 0 and c.runner_up != 0 for c in own)
        for concept in own:
            assert concept.path.startswith(graph.class_names[r] + " -")
        for concept in concepts:
            removed = reading.activations[i:i + 1].clone()
            removed[0, concept.position] = 0.0
            with torch.no_grad():
                after = model.head.logits_from_concepts(removed)[0]
            for cls, share in ((int(predicted[i]), concept.contribution), (int(runner_up[i]), concept.runner_up)):
                assert float(out.logits[i, cls] - after[cls]) == pytest.approx(share, abs=1e-5)
            if concept.contribution > 0:
                assert concept.path.startswith(graph.class_names[int(predicted[i])] + " -")
    # what a figure lists (issue 36: "material +0.00" drawn as a reason): only concepts adding at
    # least `min_share` of their class's positive total (MATTERS in figures), else the same in order
    dropped = {}
    for min_share in (MATTERS, 0.3):
        shown, _, _ = top_contributions(model, reading, paths, predicted=everything, runner_up=everything,
                                        min_share=min_share)
        dropped[min_share] = 0
        for i, (concepts, listed) in enumerate(zip(explained, shown)):
            shares = model.head.contributions(reading.activations[i:i + 1])[0].detach()
            totals = {False: float(shares[int(predicted[i])].clamp(min=0).sum()),
                      True: float(shares[int(runner_up[i])].clamp(min=0).sum())}
            keep = [c for c in concepts if abs(c.runner_up if c.for_runner_up else c.contribution)
                    >= min_share * totals[c.for_runner_up]]
            assert [(c.position, c.for_runner_up) for c in listed] == [(c.position, c.for_runner_up) for c in keep]
            dropped[min_share] += len(concepts) - len(listed)
    assert dropped[0.3] > 0  # the rule does leave concepts out
    grid = reading.grid
    maps = region_maps(reading.scores[0], grid, [0, 1], (28, 28))
    assert maps.shape == (2, 28, 28) and reading.scores.shape[1] == grid[0] * grid[1]
    # the exact class map: the regions' shares of every class add up to its score
    assert reading.class_maps.shape == (3, grid[0] * grid[1], len(graph.class_names))
    torch.testing.assert_close(reading.class_maps.sum(1) + reading.off_grid, out.logits, atol=1e-5, rtol=0)
    assert float(reading.off_grid.abs().max()) == 0.0  # a CNN: every token has its place on the grid
    shown = class_map_images(reading, predicted.tolist(), (28, 28))[0]
    cell = (28 // grid[0]) * (28 // grid[1])
    assert shown.shape == (28, 28) and shown.sum() / cell == pytest.approx(float(out.logits[0, predicted[0]]), abs=1e-4)


def test_token_contributions_add_up_to_the_logits() -> None:
    """Each concept's share is put on the token that found it (its activation's max)."""
    torch.manual_seed(0)
    weights = torch.tensor([[0.5, 0.0, 0.5], [0.2, 0.8, 0.0]])
    head = ConceptHead(in_dim=8, embed_dim=4, matrix=ClassConcepts.of_weights(weights))
    tokens = torch.randn(4, 6, 8)
    with torch.no_grad():
        logits = head(tokens).logits
        shares = head.token_contributions(head.token_scores(tokens))
    torch.testing.assert_close(shares.sum(1), logits, atol=1e-5, rtol=0)
    with torch.no_grad():  # shares sit only on tokens where some concept of the class was found
        found = head.token_scores(tokens).argmax(1)  # [B, M]
    for b in range(4):
        assert set(shares[b, :, 0].nonzero().flatten().tolist()) <= {int(found[b, 0]), int(found[b, 2])}
        assert set(shares[b, :, 1].nonzero().flatten().tolist()) <= {int(found[b, 0]), int(found[b, 1])}


def test_concept_precision_counts_linked_concepts_of_correct_images() -> None:
    # columns 0, 1: the two classes' own nodes (left out); 2..5: ontology concepts
    weights = torch.tensor([[0.0, 0.0, 0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.5, 0.5]])
    distance = torch.tensor([[0, -1, 1, 2, -1, -1], [-1, 0, -1, -1, 1, 1]])
    head = ConceptHead(in_dim=4, embed_dim=4, matrix=ClassConcepts.of_weights(weights), init_scale=1.0).eval()
    c = torch.tensor([
        [0.9, 0.0, 0.8, 0.1, 0.5, 0.0],  # class 0 (correct): top-3 ontology 2, 4, 3 -> 2 of 3 linked
        [0.0, 0.9, 0.9, 0.0, 0.8, 0.7],  # class 1 (correct): top-3 ontology 2, 4, 5 -> 2 of 3 linked
        [0.0, 0.0, 0.0, 0.1, 0.9, 0.9],  # predicted 1, true 0: left out
    ])
    labels = torch.tensor([0, 1, 0])
    result = concept_precision(head, c, labels, distance, torch.tensor([False, False, True, True, True, True]))
    assert result["images"] == 2
    assert result["concept_precision"] == pytest.approx(4 / 6)
    assert result["concept_precision_chance"] == pytest.approx(0.5)  # each class links 2 of the 4
    # by contribution, class 0's top 3 are 2, 3 (A > 0) and one with A = 0: 2 of 3 linked; class 1 likewise
    assert result["contribution_precision"] == pytest.approx(4 / 6)


def test_ontology_paths_follow_the_edges_that_made_the_matrix() -> None:
    graph = _graph()
    concepts = class_concept_matrix(graph, hops=2, decay=0.5, self_weight=0.0)
    paths = ontology_paths(graph, concepts)
    column = {name: j for j, name in enumerate(concepts.names)}
    sandal, shirt = 0, 1
    assert paths[(sandal, column["Sole"])] == "Sandal -subClassOf-> Footwear -hasPart-> Sole"
    assert paths[(sandal, column["Strap"])] == "Sandal -hasPart-> Strap"
    assert paths[(shirt, column["Sleeve"])] == "Shirt -subClassOf-> Top -hasPart-> Sleeve"
    assert paths[(sandal, column["Sandal"])] == "(the class itself)"
    assert (sandal, column["Sleeve"]) not in paths and (shirt, column["Strap"]) not in paths
    for (k, j) in paths:
        assert int(concepts.distance[k, j]) >= 0
    assert relation_label("rdfs:subClassOf") == "subClassOf" and relation_label("http://x.org/o#madeOf") == "madeOf"
    assert math.isclose(float(concepts.weights[sandal].sum()), 1.0, rel_tol=1e-6)
