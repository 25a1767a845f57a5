"""Hidden-layer analysis: does the image embedding group classes the way the ontology does?

The paper's third kind of evidence is a picture of the embedding space; kgnet adds numbers.
`superclass_silhouette` is the silhouette score (Rousseeuw 1987; cosine distance, as the
prototype head compares embeddings by cosine) of the image embeddings labelled by their class's
superclass: higher means images of sibling classes (Sandal, Sneaker: both shoes) lie closer
to each other than to other superclasses. `class_silhouette` is the same with class labels.
A knowledge-injected model is expected to raise the first more than the baseline does.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from torch import Tensor

from kgnet.kg.graph import KnowledgeGraph

#: The silhouette is O(n^2); at most this many images (stratified by class) enter it.
SILHOUETTE_MAX_POINTS = 5000
#: t-SNE is only cheap enough (seconds on a CPU) for samples of at most this many points.
TSNE_MAX_POINTS = 2000
#: t-SNE optimisation steps: 500 settles ~1,000 points (scikit-learn's default 1,000 costs 3x the time).
TSNE_STEPS = 500


@dataclass
class Superclasses:
    """The superclass of every dataset class, as the ontology's class hierarchy gives it.

    Attributes:
        class_names: the dataset's classes, in label order.
        node: [K] node id of each class's superclass in the graph.
        names: [K] readable name of each class's superclass (its node label, made unique).
        group: [K] superclass group id of each class, 0 .. num_groups - 1, in order of first use.
    """

    class_names: list[str]
    node: list[int]
    names: list[str]
    group: np.ndarray

    @property
    def num_groups(self) -> int:
        return int(self.group.max()) + 1 if len(self.group) else 0

    def of(self, class_name: str) -> str:
        return self.names[self.class_names.index(class_name)]


def superclasses(graph: KnowledgeGraph) -> Superclasses:
    """Each class's superclass: its parent in the ontology's class hierarchy.

    The hierarchy is `KnowledgeGraph.hierarchy_index` (child -> parent: rdfs:subClassOf,
    rdf:type, skos:broader), the one the hierarchy-aware mistake metrics use. The rule:

    - one parent: that parent;
    - several parents (multiple inheritance, as in WordNet): the parent with the most dataset
      classes at or below it, i.e. the grouping the ontology supports most for this data set
      (WordNet's cat is a feline and a domestic animal; with dog among the classes, domestic
      animal wins); a tie goes to the parent with the smallest node id, i.e. the
      lexicographically smallest IRI, so the choice is identical on every run and machine;
    - no parent (a root of the hierarchy): the class is its own superclass.

    Args:
        graph: a graph bound to the dataset's classes (`KnowledgeGraph.with_classes`).

    Raises:
        ValueError: if the graph has no classes bound.
    """
    if graph.class_index.numel() == 0:
        raise ValueError("bind the dataset's classes first (KnowledgeGraph.with_classes)")
    child, parent = graph.hierarchy_index
    class_nodes = graph.class_index.tolist()
    classes_under: dict[int, int] | None = None  # computed only when some class has several parents
    chosen: list[int] = []
    for node in class_nodes:
        parents = sorted(set(parent[(child == node) & (parent != node)].tolist()))
        if len(parents) > 1 and classes_under is None:
            classes_under = {}
            for other in class_nodes:
                for ancestor in graph.ancestors([other]).tolist():
                    classes_under[ancestor] = classes_under.get(ancestor, 0) + 1
        if not parents:
            chosen.append(node)
        elif len(parents) == 1:
            chosen.append(parents[0])
        else:  # most classes under it first; sorted ids make min() pick the smallest id on a tie
            chosen.append(min(parents, key=lambda p: -classes_under[p]))
    order: dict[int, int] = {}
    for node in chosen:
        order.setdefault(node, len(order))
    labels = {node: graph.node_labels[node] for node in order}
    repeated = {label for label in labels.values() if list(labels.values()).count(label) > 1}
    for node, label in labels.items():  # two nodes named alike (WordNet's two "cat"s): add the IRI's tail
        if label in repeated:
            labels[node] = f"{label} ({graph.node_iris[node].rstrip('/#').rsplit('/', 1)[-1].rsplit('#', 1)[-1]})"
    return Superclasses(class_names=list(graph.class_names), node=chosen, names=[labels[n] for n in chosen],
                        group=np.array([order[n] for n in chosen], dtype=np.int64))


def stratified_sample(labels: Sequence[int] | Tensor | np.ndarray, max_points: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of at most about `max_points` items, each class keeping its share.

    Every class present keeps at least one item, so a rare class never disappears from a
    figure or a score. All items are kept when there are no more than `max_points`.
    """
    labels = np.asarray(labels)
    if len(labels) <= max_points:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep = []
    for value in np.unique(labels):
        members = np.flatnonzero(labels == value)
        quota = max(1, int(round(max_points * len(members) / len(labels))))
        keep.append(rng.permutation(members)[:quota])
    return np.sort(np.concatenate(keep))


def silhouette(embeddings: Tensor | np.ndarray, labels: Sequence[int] | np.ndarray, *,
               max_points: int = SILHOUETTE_MAX_POINTS, seed: int = 0) -> tuple[float | None, str | None]:
    """Silhouette score (cosine) of `embeddings` grouped by `labels`, or None and the reason.

    Undefined (None) with fewer than 2 groups or with as many groups as points. Above
    `max_points` images a stratified sample is scored (the score is O(n^2)).
    """
    # deferred: scikit-learn takes ~2 s to import; only scoring at the end of a run needs it
    from sklearn.metrics import silhouette_score

    x = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels)
    index = stratified_sample(labels, max_points, seed)
    x, labels = x[index], labels[index]
    groups = len(np.unique(labels))
    if groups < 2:
        return None, f"undefined: all {len(labels)} images fall into one group"
    if groups >= len(labels):
        return None, f"undefined: {groups} groups for {len(labels)} images (each needs two or more to compare)"
    return float(silhouette_score(x, labels, metric="cosine")), None


def embedding_metrics(embeddings: Tensor | np.ndarray, labels: Sequence[int] | Tensor, supers: Superclasses | None,
                      *, max_points: int = SILHOUETTE_MAX_POINTS, seed: int = 0,
                      no_superclass_reason: str = "no class hierarchy") -> dict[str, Any]:
    """`class_silhouette` and `superclass_silhouette` for metrics.json (None + `*_reason` when undefined).

    The superclass silhouette is reported as undefined when the images' classes all have
    distinct superclasses: the grouping would then be the class grouping under other names,
    and the number would only repeat `class_silhouette`.
    """
    labels = np.asarray(labels, dtype=np.int64)
    out: dict[str, Any] = {}
    value, reason = silhouette(embeddings, labels, max_points=max_points, seed=seed)
    out["class_silhouette"] = value
    if reason:
        out["class_silhouette_reason"] = reason
    present = np.unique(labels)
    if supers is None:
        value, reason = None, f"undefined: {no_superclass_reason}"
    elif len(np.unique(supers.group[present])) == len(present):
        value, reason = None, ("undefined: every class is its own superclass (no two of the classes share a "
                               "parent in the ontology), so it would repeat class_silhouette")
    else:
        value, reason = silhouette(embeddings, supers.group[labels], max_points=max_points, seed=seed)
    out["superclass_silhouette"] = value
    if reason:
        out["superclass_silhouette_reason"] = reason
    out["silhouette_images"] = len(stratified_sample(labels, max_points, seed))
    return out


def project_2d(embeddings: Tensor | np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """[n, 2] coordinates of the L2-normalised embeddings, by PCA or t-SNE (scikit-learn).

    Normalising first makes the picture show the cosine geometry the silhouette and the
    prototype head use. t-SNE is refused above `TSNE_MAX_POINTS` (minutes on a CPU); sample first.
    """
    # deferred: scikit-learn takes ~2 s to import; only the projection figure needs it
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = np.asarray(embeddings, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    if method == "pca" or len(x) < 5:
        if len(x) < 2:
            return np.zeros((len(x), 2))
        coords = PCA(n_components=min(2, x.shape[1], len(x)), random_state=seed).fit_transform(x)
        return np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    if method != "tsne":
        raise ValueError(f"projection method must be 'tsne' or 'pca', got {method!r}")
    if len(x) > TSNE_MAX_POINTS:
        raise ValueError(f"t-SNE of {len(x)} points is slow; sample at most {TSNE_MAX_POINTS} (stratified_sample)")
    perplexity = min(30.0, (len(x) - 1) / 3)
    steps = "max_iter" if "max_iter" in inspect.signature(TSNE).parameters else "n_iter"  # renamed in 1.5
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                **{steps: TSNE_STEPS}).fit_transform(x)

