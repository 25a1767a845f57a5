"""The batched R-GCN layer against PyG's `RGCNConv` on real compiled graphs: same outputs, same
gradients, same parameter names; and no host sync anywhere in the knowledge encoder."""

from __future__ import annotations

import warnings

import pytest
import torch

from benchmarks.host_syncs import HostSyncCounter
from kgnet.data.cards import load_card
from kgnet.kg.build import build_class_graph
from kgnet.kg.graph import KnowledgeGraph
from kgnet.models.controls import drop_edges, shuffle_edges
from kgnet.models.kg_encoder import KnowledgeEncoder
from kgnet.models.relational_conv import RelationalConv, RelationalGraph
from kgnet.paths import shipped_dir

with warnings.catch_warnings():  # PyG scripts a few helpers at import time; torch deprecates that
    warnings.filterwarnings("ignore", category=FutureWarning)
    from torch_geometric.nn import RGCNConv

pytestmark = pytest.mark.usefixtures("one_thread")

DIM = 32


@pytest.fixture(scope="module")
def wordnet_graph() -> KnowledgeGraph:
    """kg/fashion_mnist.ttl around the ten classes, 2 hops: 88 nodes, 6 relations."""
    card = load_card("fashion_mnist")
    return build_class_graph(card.ontology, card.classes, wnids=card.wnids, hops=2)


@pytest.fixture(scope="module")
def garments_graph() -> KnowledgeGraph:
    """kg/fashion_mnist_garments.ttl (OWL restrictions: parts, materials, regions)."""
    card = load_card("fashion_mnist")
    return build_class_graph(shipped_dir("kg") / "fashion_mnist_garments.ttl", card.classes, hops=2)


def graphs(wordnet_graph: KnowledgeGraph, garments_graph: KnowledgeGraph) -> dict[str, KnowledgeGraph]:
    return {
        "wordnet": wordnet_graph,
        "garments": garments_graph,
        # rewired: self-loops and repeated edges appear, degrees per relation are kept
        "shuffled": shuffle_edges(wordnet_graph, seed=3),
        "no edges": drop_edges(wordnet_graph),
    }


def pair(graph: KnowledgeGraph, bases: int, **kwargs) -> tuple[RGCNConv, RelationalConv, RelationalGraph]:
    """PyG's layer and ours with the same parameters (ours loads the other's state dict, strictly)."""
    torch.manual_seed(0)
    reference = RGCNConv(DIM, DIM, graph.num_relations, num_bases=bases)
    with torch.no_grad():
        reference.bias.normal_()  # PyG starts it at zero; a non-zero bias is compared too
    ours = RelationalConv(DIM, DIM, graph.num_relations, num_bases=bases, **kwargs)
    ours.load_state_dict(reference.state_dict(), strict=True)
    return reference, ours, RelationalGraph(graph.edge_index, graph.edge_type, num_nodes=graph.num_nodes,
                                            num_relations=graph.num_relations)


def outputs_and_gradients(layer, call, x: torch.Tensor, upstream: torch.Tensor) -> dict[str, torch.Tensor]:
    x = x.clone().requires_grad_()
    out = call(x)
    grads = torch.autograd.grad(out, [x, *layer.parameters()], upstream, materialize_grads=True)
    names = ["x", *(name for name, _ in layer.named_parameters())]
    return {"out": out.detach(), **{f"grad {n}": g for n, g in zip(names, grads)}}


@pytest.mark.parametrize("name", ["wordnet", "garments", "shuffled", "no edges"])
@pytest.mark.parametrize("bases", [2, 8])
def test_equals_rgcnconv_outputs_and_gradients(wordnet_graph, garments_graph, name, bases) -> None:
    graph = graphs(wordnet_graph, garments_graph)[name]
    bases = min(bases, graph.num_relations)
    reference, ours, compiled = pair(graph, bases)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(graph.num_nodes, DIM, generator=generator)
    upstream = torch.randn(graph.num_nodes, DIM, generator=generator)
    expected = outputs_and_gradients(reference, lambda h: reference(h, graph.edge_index, graph.edge_type), x, upstream)
    got = outputs_and_gradients(ours, lambda h: ours(h, compiled), x, upstream)
    assert list(expected) == list(got)  # same parameters, same order
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], msg=lambda m, k=key: f"{name}, {k}: {m}")
    if name != "no edges":  # the comparison is not vacuous: messages move the output
        assert not torch.allclose(expected["out"], torch.addmm(ours.bias, x, ours.root).detach())


def test_chunked_messages_equal_one_gather(wordnet_graph) -> None:
    reference, whole, compiled = pair(wordnet_graph, 6)
    chunked = RelationalConv(DIM, DIM, wordnet_graph.num_relations, num_bases=6,
                             message_budget_bytes=7 * DIM * 4)  # 7 edges at a time
    chunked.load_state_dict(whole.state_dict())
    x = torch.randn(wordnet_graph.num_nodes, DIM, generator=torch.Generator().manual_seed(2))
    upstream = torch.randn_like(x)
    torch.testing.assert_close(outputs_and_gradients(chunked, lambda h: chunked(h, compiled), x, upstream),
                               outputs_and_gradients(whole, lambda h: whole(h, compiled), x, upstream))


def test_compiled_graph_pairs_and_degrees(wordnet_graph) -> None:
    g = wordnet_graph
    compiled = RelationalGraph(g.edge_index, g.edge_type, num_nodes=g.num_nodes, num_relations=g.num_relations)
    expected = {}  # (target, relation) -> in-degree, counted edge by edge
    for (_, target), relation in zip(g.edge_index.T.tolist(), g.edge_type.tolist()):
        expected[target, relation] = expected.get((target, relation), 0) + 1
    relation_of_pair = torch.repeat_interleave(torch.arange(g.num_relations), torch.tensor(compiled.relation_sizes))
    got = {(n, r): int(d) for n, r, d in zip(compiled.pair_node.tolist(), relation_of_pair.tolist(),
                                             compiled.pair_degree.flatten().tolist())}
    assert got == expected and compiled.num_pairs == len(expected) <= compiled.num_edges == g.num_edges
    # each edge feeds the pair of its own target and relation
    src, dst = g.edge_index
    assert sorted(zip(compiled.source.tolist(), compiled.pair_node[compiled.pair].tolist(),
                      relation_of_pair[compiled.pair].tolist())) == sorted(zip(src.tolist(), dst.tolist(),
                                                                              g.edge_type.tolist()))
    with pytest.raises(ValueError, match="relation ids outside"):
        RelationalGraph(g.edge_index, g.edge_type, num_nodes=g.num_nodes, num_relations=2)
    with pytest.raises(ValueError, match=r"\[2, E\]"):
        RelationalGraph(g.edge_index[0], g.edge_type, num_nodes=g.num_nodes, num_relations=g.num_relations)


def encoder(graph: KnowledgeGraph) -> KnowledgeEncoder:
    return KnowledgeEncoder(num_nodes=graph.num_nodes, dim=DIM, text_dim=16, num_relations=graph.num_relations,
                            edge_index=graph.edge_index, edge_type=graph.edge_type, num_bases=8, dropout=0.0)


def test_state_dict_keeps_rgcnconv_names_and_no_graph_buffers(wordnet_graph) -> None:
    """Releases saved with PyG's RGCNConv inside load unchanged: the same keys, nothing added."""
    model = encoder(wordnet_graph)
    conv_keys = sorted(k for k in model.state_dict() if ".conv." in k)
    assert conv_keys == sorted(f"layers.{i}.conv.{p}" for i in range(2) for p in ("bias", "comp", "root", "weight"))
    assert not any(k.startswith("graph.") for k in model.state_dict())


def test_encoder_forward_and_backward_never_sync_the_host(wordnet_graph) -> None:
    model = encoder(wordnet_graph)
    text = torch.randn(wordnet_graph.num_nodes, 16)
    mask = torch.rand(wordnet_graph.num_nodes) > 0.3
    with HostSyncCounter() as syncs:
        model(text, mask).square().mean().backward()
    assert syncs.count == 0, syncs.calls
    with HostSyncCounter() as syncs:  # the counter does see what the encoder avoids
        bool(wordnet_graph.edge_type.max() > 0), wordnet_graph.edge_index[:, wordnet_graph.edge_type == 0]
    assert syncs.calls == {"aten._local_scalar_dense": 1, "aten.index (boolean mask)": 1}
