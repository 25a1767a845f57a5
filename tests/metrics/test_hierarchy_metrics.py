"""Hierarchy-aware metrics (Bertinetto et al. 2020) on hierarchies whose LCA heights are known."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
import torch

from kgnet.data.cards import load_card
from kgnet.kg.build import build_class_graph
from kgnet.metrics.hierarchy import (
    ClassHierarchy,
    hierarchical_distance_at_k,
    hierarchy_metrics,
    mistake_severity,
)

PREFIXES = """\
@prefix ex: <http://example.org/> .
@prefix owl: <http://www.w3.org/2002/07/owl#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
"""

# thing(3) > animal(2) > dog(1) > {beagle, collie}; animal > cat(1) > tabby; animal > goldfish;
# thing > vehicle(1) > car.  Heights in brackets: the longest path down to a class.
TREE = PREFIXES + """
ex:thing a owl:Class ; rdfs:label "thing" .
ex:animal rdfs:subClassOf ex:thing ; rdfs:label "animal" .
ex:vehicle rdfs:subClassOf ex:thing ; rdfs:label "vehicle" .
ex:dog rdfs:subClassOf ex:animal ; rdfs:label "dog" .
ex:cat rdfs:subClassOf ex:animal ; rdfs:label "cat" .
ex:beagle rdfs:subClassOf ex:dog ; rdfs:label "beagle" .
ex:collie rdfs:subClassOf ex:dog ; rdfs:label "collie" .
ex:tabby rdfs:subClassOf ex:cat ; rdfs:label "tabby" .
ex:goldfish rdfs:subClassOf ex:animal ; rdfs:label "goldfish" .
ex:car rdfs:subClassOf ex:vehicle ; rdfs:label "car" .
"""
TREE_CLASSES = ["beagle", "collie", "tabby", "goldfish", "car"]
TREE_LCA = [
    # beagle collie tabby goldfish car
    [0, 1, 2, 2, 3],  # beagle
    [1, 0, 2, 2, 3],  # collie
    [2, 2, 0, 2, 3],  # tabby
    [2, 2, 2, 0, 3],  # goldfish
    [3, 3, 3, 3, 0],  # car
]

# Multiple inheritance: robodog is a dog (height 1) and an artifact (height 2); aibo and puppet
# are dogs and toys (both height 1).
DAG = PREFIXES + """
ex:thing a owl:Class ; rdfs:label "thing" .
ex:animal rdfs:subClassOf ex:thing ; rdfs:label "animal" .
ex:artifact rdfs:subClassOf ex:thing ; rdfs:label "artifact" .
ex:dog rdfs:subClassOf ex:animal ; rdfs:label "dog" .
ex:cat rdfs:subClassOf ex:animal ; rdfs:label "cat" .
ex:vehicle rdfs:subClassOf ex:artifact ; rdfs:label "vehicle" .
ex:toy rdfs:subClassOf ex:artifact ; rdfs:label "toy" .
ex:beagle rdfs:subClassOf ex:dog ; rdfs:label "beagle" .
ex:tabby rdfs:subClassOf ex:cat ; rdfs:label "tabby" .
ex:car rdfs:subClassOf ex:vehicle ; rdfs:label "car" .
ex:robodog rdfs:subClassOf ex:dog, ex:artifact ; rdfs:label "robodog" .
ex:aibo rdfs:subClassOf ex:dog, ex:toy ; rdfs:label "aibo" .
ex:puppet rdfs:subClassOf ex:dog, ex:toy ; rdfs:label "puppet" .
"""
DAG_CLASSES = ["beagle", "tabby", "car", "robodog", "aibo", "puppet"]
DAG_LCA = [
    # beagle tabby car robodog aibo puppet
    [0, 2, 3, 1, 1, 1],  # beagle
    [2, 0, 3, 2, 2, 2],  # tabby
    [3, 3, 0, 2, 2, 2],  # car: meets robodog, aibo and puppet at artifact (2), not thing (3)
    [1, 2, 2, 0, 1, 1],  # robodog
    [1, 2, 2, 1, 0, 1],  # aibo
    [1, 2, 2, 1, 1, 0],  # puppet
]


def hierarchy_of(tmp_path: Path, turtle: str, classes: list[str]) -> ClassHierarchy:
    path = tmp_path / "ontology.ttl"
    path.write_text(turtle)
    return ClassHierarchy(build_class_graph(path, classes))


def ranked(*orders: list[str], classes: list[str] = TREE_CLASSES) -> torch.Tensor:
    """Logits that rank the classes of each row in the given order (best first)."""
    logits = torch.zeros(len(orders), len(classes))
    for row, order in enumerate(orders):
        for score, name in enumerate(reversed(order)):
            logits[row, classes.index(name)] = float(score + 1)
    return logits


@pytest.fixture()
def tree(tmp_path: Path) -> ClassHierarchy:
    return hierarchy_of(tmp_path, TREE, TREE_CLASSES)


def labels(graph_labels: list[str], nodes: list[int]) -> set[str]:
    return {graph_labels[n] for n in nodes}


def test_tree_lca_heights_match_hand_computed_matrix(tree: ClassHierarchy) -> None:
    assert tree.lca_height.tolist() == TREE_LCA
    assert tree.disconnected_height == 4


def test_height_is_longest_path_down_so_uneven_leaves_meet_at_root_height(tmp_path: Path) -> None:
    path = tmp_path / "tree.ttl"
    path.write_text(TREE)
    graph = build_class_graph(path, TREE_CLASSES)
    hierarchy = ClassHierarchy(graph)
    heights = {graph.node_labels[n]: h for n, h in hierarchy.height.items()}
    assert heights == {
        "thing": 3, "animal": 2, "vehicle": 1, "dog": 1, "cat": 1,
        "beagle": 0, "collie": 0, "tabby": 0, "goldfish": 0, "car": 0,
    }
    # car and goldfish are both two steps below thing, but thing's height is its longest path
    # down (thing > animal > dog > beagle), so they meet at height 3, not 2.
    car, goldfish = TREE_CLASSES.index("car"), TREE_CLASSES.index("goldfish")
    assert hierarchy.lca_height[car, goldfish] == 3
    assert labels(graph.node_labels, hierarchy.lowest_common_ancestors(car, goldfish)) == {"thing"}


def test_metrics_on_hand_made_logits(tree: ClassHierarchy) -> None:
    logits = ranked(
        ["collie", "beagle", "tabby", "goldfish", "car"],  # truth beagle: mistake at height 1
        ["tabby", "goldfish", "beagle", "collie", "car"],  # truth tabby: correct
        ["beagle", "car", "collie", "tabby", "goldfish"],  # truth car: mistake at height 3
        ["goldfish", "car", "beagle", "collie", "tabby"],  # truth goldfish: correct
    )
    targets = torch.tensor([TREE_CLASSES.index(c) for c in ["beagle", "tabby", "car", "goldfish"]])
    lca = tree.lca_height
    assert mistake_severity(logits, targets, lca) == pytest.approx((1 + 3) / 2)
    assert hierarchical_distance_at_k(logits, targets, lca, 1) == pytest.approx((1 + 0 + 3 + 0) / 4)
    # top-2: (collie 1, beagle 0), (tabby 0, goldfish 2), (beagle 3, car 0), (goldfish 0, car 3)
    assert hierarchical_distance_at_k(logits, targets, lca, 2) == pytest.approx((0.5 + 1 + 1.5 + 1.5) / 4)
    # top-5 is every class: the row sums of the truths' rows, over 5 classes and 4 images
    assert hierarchical_distance_at_k(logits, targets, lca, 5) == pytest.approx((8 + 9 + 12 + 9) / 20)
    assert hierarchical_distance_at_k(logits, targets, lca, 50) == pytest.approx((8 + 9 + 12 + 9) / 20)
    assert hierarchy_metrics(logits, targets, lca) == pytest.approx(
        {"mistake_severity": 2.0, "hdist@1": 1.0, "hdist@5": 1.9}
    )
    correct_only = [1, 3]
    assert math.isnan(mistake_severity(logits[correct_only], targets[correct_only], lca))
    assert hierarchical_distance_at_k(logits[correct_only], targets[correct_only], lca, 1) == 0.0


def test_allowed_restricts_predictions_and_images(tree: ClassHierarchy) -> None:
    logits = ranked(
        ["collie", "beagle", "tabby", "goldfish", "car"],  # among allowed: beagle, tabby, car
        ["tabby", "goldfish", "beagle", "collie", "car"],  # tabby, beagle, car
        ["beagle", "car", "collie", "tabby", "goldfish"],  # beagle, car, tabby
        ["goldfish", "car", "beagle", "collie", "tabby"],  # goldfish is not allowed: left out
    )
    targets = torch.tensor([TREE_CLASSES.index(c) for c in ["beagle", "tabby", "car", "goldfish"]])
    allowed = [TREE_CLASSES.index(c) for c in ["beagle", "tabby", "car"]]
    lca = tree.lca_height
    assert mistake_severity(logits, targets, lca, allowed) == pytest.approx(3.0)
    assert hierarchical_distance_at_k(logits, targets, lca, 1, allowed) == pytest.approx(1.0)
    # k=5 is capped at the 3 allowed classes: rows (0+2+3)/3, (0+2+3)/3, (3+3+0)/3
    expected = (5 / 3 + 5 / 3 + 2) / 3
    allowed_tensor = torch.tensor(allowed)
    assert hierarchical_distance_at_k(logits, targets, lca, 5, allowed_tensor) == pytest.approx(expected)
    assert math.isnan(hierarchical_distance_at_k(logits, targets, lca, 1, [TREE_CLASSES.index("collie")]))


def test_bad_shapes_are_rejected(tree: ClassHierarchy) -> None:
    with pytest.raises(ValueError, match="do not match"):
        mistake_severity(torch.zeros(2, 4), torch.tensor([0, 1]), tree.lca_height)
    with pytest.raises(ValueError, match="k must be"):
        hierarchical_distance_at_k(torch.zeros(2, 5), torch.tensor([0, 1]), tree.lca_height, 0)


def test_multiple_inheritance_takes_the_common_ancestor_of_least_height(tmp_path: Path) -> None:
    path = tmp_path / "dag.ttl"
    path.write_text(DAG)
    graph = build_class_graph(path, DAG_CLASSES)
    hierarchy = ClassHierarchy(graph)
    assert hierarchy.lca_height.tolist() == DAG_LCA

    def lca_labels(a: str, b: str) -> set[str]:
        nodes = hierarchy.lowest_common_ancestors(DAG_CLASSES.index(a), DAG_CLASSES.index(b))
        return labels(graph.node_labels, nodes)

    # robodog's parents sit at heights 1 (dog) and 2 (artifact): the LCA is whichever common
    # ancestor is lowest for the pair in question.
    assert lca_labels("robodog", "beagle") == {"dog"}
    assert lca_labels("robodog", "car") == {"artifact"}
    # aibo and puppet share two incomparable parents of equal height: both are LCAs.
    assert lca_labels("aibo", "puppet") == {"dog", "toy"}


def test_disconnected_classes_meet_at_a_virtual_root(tmp_path: Path) -> None:
    turtle = PREFIXES + """
ex:dog rdfs:subClassOf ex:animal ; rdfs:label "dog" .
ex:cat rdfs:subClassOf ex:animal ; rdfs:label "cat" .
ex:beagle rdfs:subClassOf ex:dog ; rdfs:label "beagle" .
ex:tabby rdfs:subClassOf ex:cat ; rdfs:label "tabby" .
ex:car rdfs:subClassOf ex:vehicle ; rdfs:label "car" .
ex:rock a owl:Class ; rdfs:label "rock" .
ex:animal rdfs:label "animal" .
ex:vehicle rdfs:label "vehicle" .
"""
    hierarchy = hierarchy_of(tmp_path, turtle, ["beagle", "tabby", "car", "rock"])
    assert hierarchy.disconnected_height == 3  # animal has height 2; the virtual root is above it
    assert hierarchy.lca_height.tolist() == [
        [0, 2, 3, 3],
        [2, 0, 3, 3],
        [3, 3, 0, 3],
        [3, 3, 3, 0],
    ]
    assert hierarchy.lowest_common_ancestors(0, 2) == []


def test_subclass_cycle_and_a_class_above_another_class(tmp_path: Path) -> None:
    turtle = PREFIXES + """
ex:animal a owl:Class ; rdfs:label "animal" .
ex:canine rdfs:subClassOf ex:dog, ex:animal ; rdfs:label "canine" .
ex:dog rdfs:subClassOf ex:canine ; rdfs:label "dog" .
ex:beagle rdfs:subClassOf ex:dog ; rdfs:label "beagle" .
ex:collie rdfs:subClassOf ex:dog ; rdfs:label "collie" .
ex:tabby rdfs:subClassOf ex:animal ; rdfs:label "tabby" .
"""
    # dog = canine is one node of height 1; "dog" is itself a class above beagle and collie.
    hierarchy = hierarchy_of(tmp_path, turtle, ["beagle", "collie", "dog", "tabby"])
    assert hierarchy.lca_height.tolist() == [
        [0, 1, 1, 2],
        [1, 0, 1, 2],
        [1, 1, 0, 2],
        [2, 2, 2, 0],
    ]


def test_cifar100_hierarchy_is_sensible() -> None:
    card = load_card("cifar100")
    hierarchy = ClassHierarchy(build_class_graph(card.ontology, card.classes, wnids=card.wnids))
    lca = hierarchy.lca_height
    index = card.classes.index
    assert lca.shape == (100, 100)
    assert torch.equal(lca, lca.T)
    assert bool((lca.diagonal() == 0).all())
    off_diagonal = lca[~torch.eye(100, dtype=torch.bool)]
    assert bool((off_diagonal > 0).all())
    assert lca[index("maple_tree"), index("oak_tree")] < lca[index("maple_tree"), index("bicycle")]
    assert lca[index("bicycle"), index("motorcycle")] < lca[index("bicycle"), index("oak_tree")]
    assert lca[index("wolf"), index("fox")] < lca[index("wolf"), index("apple")]
    assert lca[index("apple"), index("pear")] < lca[index("apple"), index("tractor")]


def test_imagenet1k_lca_heights_are_fast_and_sensible() -> None:
    """~3 s in all (parsing the ontology is most of it), so it stays in the fast suite."""
    card = load_card("imagenet1k")
    graph = build_class_graph(card.ontology, card.classes, wnids=card.wnids)
    start = time.perf_counter()
    hierarchy = ClassHierarchy(graph)
    assert time.perf_counter() - start < 5.0
    lca = hierarchy.lca_height
    assert lca.shape == (1000, 1000)
    assert torch.equal(lca, lca.T)
    beagle, basset = card.wnids.index("n02088364"), card.wnids.index("n02088238")
    tabby, sports_car = card.wnids.index("n02123045"), card.wnids.index("n04285008")
    assert lca[beagle, basset] < lca[beagle, tabby] < lca[beagle, sports_car]
