"""The concept head's contributions are exact, and A is read from the ontology's edges."""

from __future__ import annotations

import torch

from kgnet.kg.graph import KnowledgeGraph
from kgnet.models.class_concepts import (ClassConcepts, class_concept_matrix, derange_rows, derangement,
                                         identity_concepts)
from kgnet.models.heads.concept import ConceptHead


def _graph() -> KnowledgeGraph:
    """sandal, sneaker -> footwear; sandal hasPart strap; sneaker hasPart laces; shirt -> garment."""
    names = ["footwear", "garment", "laces", "sandal", "shirt", "sneaker", "strap", "thing"]
    sub, part = 0, 1
    edges = [(3, 0, sub), (5, 0, sub), (4, 1, sub), (0, 7, sub), (1, 7, sub), (3, 6, part), (5, 2, part)]
    src = torch.tensor([e[0] for e in edges])
    dst = torch.tensor([e[1] for e in edges])
    rel = torch.tensor([e[2] for e in edges])
    graph = KnowledgeGraph(
        node_iris=[f"ex:{n}" for n in names], node_labels=names, node_texts=names,
        node_names=[[n] for n in names],
        edge_index=torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], 1),
        edge_type=torch.cat([rel, rel + 2]), relation_names=["sub", "part", "^sub", "^part"],
        relation_iris=["ex:sub", "ex:part"])
    return graph.with_classes(["Sandal", "Shirt", "Sneaker"], [3, 4, 5])


def test_matrix_follows_edges_and_drops_shared_concepts() -> None:
    cc = class_concept_matrix(_graph(), hops=2, decay=0.5, self_weight=0.0)
    support = {cc.names[j] for j in cc.weights[0].nonzero().flatten().tolist()}
    assert support == {"footwear", "strap"}  # "thing" is every class's: dropped
    assert "thing" not in cc.names
    assert torch.allclose(cc.weights.sum(1), torch.ones(3))
    sneaker = {cc.names[j] for j in cc.weights[2].nonzero().flatten().tolist()}
    assert sneaker == {"footwear", "laces"}


def test_self_weight_and_identity_control() -> None:
    cc = class_concept_matrix(_graph(), hops=2, self_weight=0.25)
    assert torch.allclose(torch.diagonal(cc.weights[:, :3]), torch.full((3,), 0.25))
    assert torch.equal(identity_concepts(_graph()).weights, torch.eye(3))


def test_derangement_moves_every_row_and_keeps_own_column() -> None:
    perm = derangement(3, seed=1)
    assert all(p != i for i, p in enumerate(perm))
    cc = class_concept_matrix(_graph(), hops=2, self_weight=0.25)
    moved = derange_rows(cc, seed=1)
    assert torch.allclose(torch.diagonal(moved.weights[:, :3]), torch.diagonal(cc.weights[:, :3]))
    for i, p in enumerate(perm):
        assert torch.allclose(moved.weights[i, 3:], cc.weights[p, 3:])


def test_removing_a_concept_moves_each_class_score_by_its_contribution() -> None:
    torch.manual_seed(0)
    weights = torch.tensor([[0.5, 0.0, 0.3, 0.2], [0.0, 0.6, 0.4, 0.0]])
    head = ConceptHead(in_dim=8, embed_dim=4, matrix=ClassConcepts.of_weights(weights))
    tokens = torch.randn(5, 3, 8)
    out = head(tokens)
    logits, c = out.logits, out.concepts
    assert out.embedding is c
    contrib = head.contributions(c)
    for j in range(weights.shape[1]):
        removed = c.clone()
        removed[:, j] = 0
        assert torch.allclose(logits - head.logits_from_concepts(removed), contrib[:, :, j], atol=1e-5)
    assert torch.allclose(contrib.sum(-1), logits, atol=1e-5)
    assert bool((contrib[:, 1, 0] == 0).all())  # off the ontology's support: no contribution


def _large_sparse_weights(k: int = 300, m: int = 600, per_row: int = 6) -> torch.Tensor:
    """A [k, m] like a large ontology's: a few concepts per class, some columns no class uses."""
    generator = torch.Generator().manual_seed(0)
    weights = torch.zeros(k, m)
    for row in range(k):
        cols = torch.randperm(m - 50, generator=generator)[:per_row] + 50  # columns 0..49 unused
        weights[row, cols] = torch.rand(per_row, generator=generator) + 0.1
    return weights / weights.sum(1, keepdim=True)


def test_sparse_class_scores_equal_the_dense_ones_with_their_gradients() -> None:
    weights = _large_sparse_weights()
    heads = {}
    for sparse in (True, False):
        torch.manual_seed(0)
        heads[sparse] = ConceptHead(in_dim=16, embed_dim=8, matrix=ClassConcepts.of_weights(weights), sparse=sparse)
    assert ConceptHead(in_dim=16, embed_dim=8, matrix=ClassConcepts.of_weights(weights)).sparse  # for a large, sparse A
    assert not ConceptHead(in_dim=16, embed_dim=8, matrix=ClassConcepts.of_weights(torch.eye(4))).sparse
    assert torch.equal(heads[True].used, (weights != 0).any(0).nonzero().squeeze(1))
    tokens = torch.randn(5, 4, 16)
    results = {}
    for sparse, head in heads.items():
        out = head(tokens)
        logits, c = out.logits, out.concepts
        (logits * torch.linspace(-1, 1, logits.shape[1])).sum().backward()
        results[sparse] = (logits, c, head.proj.weight.grad, head.vectors.weight.grad)
    for dense, sparse in zip(results[False], results[True]):
        torch.testing.assert_close(sparse, dense, rtol=1e-5, atol=1e-6)
    logits, c = results[True][:2]
    assert bool((c[:, :50] == 0).all())  # a concept no class uses has activation 0
    # removal curves pass [N, steps, M] activations: the sparse product takes any leading axes
    stacked = heads[True].logits_from_concepts(torch.stack([c, c.flip(0)], 1))
    torch.testing.assert_close(stacked[:, 0], logits, rtol=1e-5, atol=1e-6)


def test_sparse_head_takes_no_host_sync_and_runs_under_bf16_autocast() -> None:
    from benchmarks.host_syncs import HostSyncCounter

    head = ConceptHead(in_dim=16, embed_dim=8, matrix=ClassConcepts.of_weights(_large_sparse_weights()))
    tokens = torch.randn(5, 4, 16)
    head(tokens).logits.sum().backward()  # first call outside the count
    with HostSyncCounter() as syncs:
        head(tokens).logits.sum().backward()
    assert syncs.count == 0, syncs.sites
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = head(tokens).logits
    logits.sum().backward()
    assert torch.isfinite(logits).all() and torch.isfinite(head.proj.weight.grad).all()


def test_loading_another_matrix_rebuilds_what_is_derived_from_it() -> None:
    weights = _large_sparse_weights()
    head = ConceptHead(in_dim=16, embed_dim=8, matrix=ClassConcepts.of_weights(weights))
    moved = ConceptHead(in_dim=16, embed_dim=8, matrix=ClassConcepts.of_weights(weights.roll(7, dims=1)))
    moved.load_state_dict(head.state_dict())
    assert torch.equal(moved.used, head.used) and torch.equal(moved.a_values, head.a_values)
    tokens = torch.randn(3, 4, 16)
    torch.testing.assert_close(moved(tokens).logits, head(tokens).logits)
    assert not any(name.startswith(("a_", "used")) for name in head.state_dict())  # derived, never saved
