r"""The knowledge encoder: node embeddings from node text, learned embeddings and typed edges.

Each node starts from its encoded text (knowledge scale 1, where the scales allow it) plus a
learned embedding, then passes through a stack of relational graph convolutions (R-GCN,
Schlichtkrull et al., https://arxiv.org/abs/1703.06103) with basis decomposition, one weight
set per relation and its inverse (`kgnet.models.relational_conv`: PyG's `RGCNConv` operator,
computed without a per-relation loop over the edges):

.. math::
    \mathbf{h}_i' = \mathbf{h}_i + \mathrm{Dropout}\Big(\mathrm{GELU}\Big(\mathbf{W}_0
    \hat{\mathbf{h}}_i + \sum_{r} \frac{1}{|\mathcal{N}_r(i)|} \sum_{j \in \mathcal{N}_r(i)}
    \mathbf{W}_r \hat{\mathbf{h}}_j\Big)\Big), \quad \hat{\mathbf{h}} = \mathrm{LayerNorm}(\mathbf{h}),
    \quad \mathbf{W}_r = \sum_b a_{rb} \mathbf{V}_b

Without message passing (scale `relation` off) the convolution is replaced by a per-node
linear map of the same width, so the encoder keeps its depth but reads no edge. It is
trained end to end with the backbone. The graph is compiled once into index buffers
(`RelationalGraph`), so a forward pass costs the same whatever the batch and never syncs the host.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from kgnet.models.relational_conv import RelationalConv, RelationalGraph


class TextInput(nn.Module):
    r"""Adds each node's projected text :math:`m_i \,\mathrm{LN}(\mathbf{W}_t \mathbf{t}_i)` to its input."""

    def __init__(self, *, text_dim: int, dim: int, bias: bool = True) -> None:
        super().__init__()
        self.proj = nn.Linear(text_dim, dim, bias=bias)
        self.norm = nn.LayerNorm(dim)

    def reset_parameters(self) -> None:
        self.proj.reset_parameters()
        self.norm.reset_parameters()

    def forward(self, x: Tensor, text_features: Tensor, text_mask: Tensor) -> Tensor:
        text = self.norm(self.proj(text_features))
        return x + text * text_mask.unsqueeze(-1).to(text.dtype)


class NoTextInput(nn.Module):
    """No node's text is read (the scales allow none): the inputs stay the learned embeddings."""

    def reset_parameters(self) -> None:
        pass

    def forward(self, x: Tensor, text_features: Tensor | None, text_mask: Tensor | None) -> Tensor:
        return x


class NodeInput(nn.Module):
    r"""Node inputs :math:`\mathbf{x}_i = m_i \,\mathrm{LN}(\mathbf{W}_t \mathbf{t}_i) + \mathbf{e}_i`.

    :math:`m_i` is 1 where the node's text may be read, so a node without text keeps only
    its learned embedding :math:`\mathbf{e}_i`; the learned embeddings start small so that
    text, where present, dominates at first.
    """

    def __init__(self, *, num_nodes: int, dim: int, text_dim: int | None, embedding_std: float = 0.02,
                 text_bias: bool = True) -> None:
        """Args:
            num_nodes: Nodes in view.
            dim: Embedding width.
            text_dim: Width of the text features; None when no node's text is read.
            embedding_std: Starting spread of the learned embeddings (1 gives them the text's
                norm, so nodes start near-orthogonal).
            text_bias: A bias in the text projection (it adds the same vector to every node's
                text, which the LayerNorm then magnifies into a direction all nodes share).
        """
        super().__init__()
        self.embedding_std = embedding_std
        self.embedding = nn.Embedding(num_nodes, dim)
        self.text = TextInput(text_dim=text_dim, dim=dim, bias=text_bias) if text_dim else NoTextInput()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.embedding.weight, std=self.embedding_std)
        self.text.reset_parameters()

    def forward(self, text_features: Tensor | None, text_mask: Tensor | None) -> Tensor:
        """Inputs [num_nodes, dim] from text [num_nodes, text_dim] where `text_mask` [num_nodes]."""
        return self.text(self.embedding.weight, text_features, text_mask)


class NodeLinear(nn.Linear):
    """A per-node linear map in place of the R-GCN convolution: the same depth, no edge read."""

    def forward(self, x: Tensor, graph: RelationalGraph | None = None) -> Tensor:
        return super().forward(x)


class RelationalLayer(nn.Module):
    """One pre-norm residual layer: an R-GCN convolution, or a linear map without edges."""

    def __init__(self, *, dim: int, num_relations: int | None, num_bases: int, dropout: float) -> None:
        """Args:
            dim: Embedding width (in and out).
            num_relations: Relation ids including inverses; None = no message passing.
            num_bases: Basis matrices of the relation weights (capped at `num_relations`).
            dropout: Dropout on the layer's update.
        """
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        if num_relations is None:
            self.conv: nn.Module = NodeLinear(dim, dim)
        else:
            num_relations = max(1, num_relations)
            self.conv = RelationalConv(dim, dim, num_relations, num_bases=min(num_bases, num_relations))
        self.act = nn.GELU()
        self.drop = nn.Dropout(dropout)

    def forward(self, h: Tensor, graph: RelationalGraph | None) -> Tensor:
        return h + self.drop(self.act(self.conv(self.norm(h), graph)))


class KnowledgeEncoder(nn.Module):
    """Node inputs, `num_layers` relational layers and a final LayerNorm: embeddings [N, dim]."""

    def __init__(
        self,
        *,
        num_nodes: int,
        dim: int,
        text_dim: int | None,
        num_relations: int | None,
        edge_index: Tensor | None = None,
        edge_type: Tensor | None = None,
        num_layers: int = 2,
        num_bases: int = 8,
        dropout: float = 0.1,
        embedding_std: float = 0.02,
        text_bias: bool = True,
    ) -> None:
        """Args:
            num_nodes: Nodes in view.
            dim: Embedding width.
            text_dim: Width of the text features; None when no node's text is read.
            num_relations: Relation ids including inverses; None = no message passing.
            edge_index: [2, E] edges among the nodes (with message passing; None = no edges).
            edge_type: [E] relation ids of the edges.
            num_layers: Relational layers.
            num_bases: Basis matrices shared by the relation weights.
            dropout: Dropout on each layer's update.
            embedding_std: Starting spread of the learned node inputs (`NodeInput`).
            text_bias: A bias in the text projection (`NodeInput`).
        """
        super().__init__()
        self.input = NodeInput(num_nodes=num_nodes, dim=dim, text_dim=text_dim, embedding_std=embedding_std,
                               text_bias=text_bias)
        self.graph: RelationalGraph | None = None
        if num_relations is not None:
            if edge_index is None:
                edge_index, edge_type = torch.empty(2, 0, dtype=torch.long), torch.empty(0, dtype=torch.long)
            self.graph = RelationalGraph(edge_index, edge_type, num_nodes=num_nodes,
                                         num_relations=max(1, num_relations))
        self.layers = nn.ModuleList(
            RelationalLayer(dim=dim, num_relations=num_relations, num_bases=num_bases, dropout=dropout)
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, text_features: Tensor | None, text_mask: Tensor | None) -> Tensor:
        """Node embeddings [num_nodes, dim].

        Args:
            text_features: [num_nodes, text_dim], or None when no text is read.
            text_mask: [num_nodes] bool, which nodes' text is read.
        """
        h = self.input(text_features, text_mask)
        for layer in self.layers:
            h = layer(h, self.graph)
        return self.norm(h)
