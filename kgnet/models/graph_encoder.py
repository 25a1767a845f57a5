"""`GraphEncoder`: node embeddings of the run's RDF graph, learned end to end with the backbone.

It holds the graph view the knowledge scales allow (as buffers) and the R-GCN
(`kgnet.models.kg_encoder.KnowledgeEncoder`: node text and learned inputs, messages along the
typed edges). The infusion blocks and the heads read its embeddings; it knows nothing of them,
except how the head it is composed with wants them to start (`NodeStart`). A model without a
graph encoder has `NoGraphEncoder` in its place: no parameters, no node embeddings.

Node embeddings depend only on the weights and the graph, not on the images. In training
mode they are recomputed every forward (the gradients must reach the R-GCN); in eval mode
they are computed once, without gradients, and cached until the weights change. The cache key
is each weight's storage and version counter, which every in-place update bumps (an optimiser
step, `load_state_dict`, edits under `no_grad`), and `train()` clears it, so inference
costs the backbone plus the infusion block and a stale cache is never served.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from kgnet.config import Config
from kgnet.models.controls import CONTROLS
from kgnet.models.kg_encoder import KnowledgeEncoder
from kgnet.models.node_vectors import GraphRows, NodeVectors, OwnVectors, local_ids
from kgnet.models.registry import Part, register_part
from kgnet.models.scales import KnowledgeView

if TYPE_CHECKING:
    from kgnet.models.factory import Plan
    from kgnet.variants import Variant

#: The scales whose node text the encoder reads (`kgnet.models.scales`).
TEXT_SCALES = frozenset({"category", "wide"})


@register_part("graph_encoder")
class GraphEncoder(Part, nn.Module):
    """The R-GCN over a fixed graph view: node embeddings [n, dim].

    Buffers (not saved in the state dict: they are rebuilt from the graph): `text_features`
    [n, D] (zero where the scales forbid reading), `text_mask` [n], `class_index` [K] and
    `token_index` [t] (local ids), `node_ids` [n] (each local node's id in the full graph); the
    edges are compiled into the encoder's `graph` (`RelationalGraph`). `node_labels` names the
    local nodes.
    """

    slot = "graph_encoder"
    #: Shared with the infusion, which is built right after it (`kgnet.models.factory`).
    stream = "knowledge"
    sections = ("graph_encoder",)
    knowledge = frozenset({"edges", "text"})

    def __init__(
        self,
        *,
        view: KnowledgeView,
        text_features: Tensor | None,
        dim: int = 256,
        rgcn_layers: int = 2,
        rgcn_bases: int = 8,
        dropout: float = 0.1,
        embedding_std: float = 0.02,
        center_text: bool = False,
        lr_scale: float = 1.0,
    ) -> None:
        """Args:
            view: What of the graph the scales use (`kgnet.models.scales.select_view`).
            text_features: [num nodes of the full graph, D] encoded node text; may be None
                when `view.text_mask` reads no text.
            dim: Width of the node embeddings.
            rgcn_layers: Relational layers of the encoder.
            rgcn_bases: Basis matrices of the R-GCN.
            dropout: Dropout in the encoder.
            embedding_std: Starting spread of the learned node inputs.
            center_text: Subtract the mean text vector of the nodes that read text and project
                it without a bias: sentence embeddings share a direction, and the projection's
                bias adds one, so without this every node embedding starts alike (measured on
                the garments ontology at init: mean pairwise cosine of the concept vectors
                0.31 uncentred, 0.01 centred; free random vectors 0.00).
            lr_scale: Its learning rate as a multiple of the run's (`parameter_groups`).
        """
        super().__init__()
        reads_text = bool(view.text_mask.any())
        if reads_text and text_features is None:
            raise ValueError("the knowledge scales read node text: pass text_features")
        graph = view.graph
        if reads_text:
            local = text_features[view.node_ids].float()
            if center_text:
                local = local - local[view.text_mask].mean(0)
            local = local * view.text_mask.unsqueeze(-1)
            self.register_buffer("text_features", local, persistent=False)
        else:
            self.register_buffer("text_features", None, persistent=False)
        self.register_buffer("text_mask", view.text_mask.clone(), persistent=False)
        self.register_buffer("class_index", graph.class_index.clone(), persistent=False)
        self.register_buffer("token_index", view.token_index.clone(), persistent=False)
        self.register_buffer("node_ids", view.node_ids.clone(), persistent=False)
        self.node_labels = list(graph.node_labels)
        self.lr_scale = lr_scale
        self.encoder = KnowledgeEncoder(
            num_nodes=graph.num_nodes,
            dim=dim,
            text_dim=self.text_features.shape[1] if reads_text else None,
            num_relations=view.num_relations,
            edge_index=graph.edge_index,
            edge_type=graph.edge_type,
            num_layers=rgcn_layers,
            num_bases=rgcn_bases,
            dropout=dropout,
            embedding_std=embedding_std,
            text_bias=not center_text,
        )
        self._cache: tuple[tuple, Tensor] | None = None

    @classmethod
    def graph_hops(cls, config: Config) -> int:
        return config.graph_encoder.hops

    @classmethod
    def reads_text(cls, config: Config, variant: Variant) -> bool:
        """Whether its scales read node text and the variant's control leaves it to read."""
        scales = set(variant.value(config, "graph_encoder.scales"))
        return bool(scales & TEXT_SCALES) and CONTROLS[variant.control].keeps_text

    @classmethod
    def settings(cls, config: Config, variant: Variant) -> set[str]:
        """Its section, less what the variant fixes and the text model where it reads no text."""
        unread = {key for key, _ in variant.fixed} | {"graph_encoder.correction_decay"}
        if not cls.reads_text(config, variant):
            unread.add("graph_encoder.text_model")
        return super().settings(config, variant) - unread

    @classmethod
    def node_vectors(cls, plan: Plan) -> NodeVectors:
        """What the heads composed with it read: rows of its node embeddings over the plan's view."""
        return GraphRows(plan.knowledge.encoder_view(plan.scales)[0])

    @classmethod
    def build(cls, plan: Plan) -> GraphEncoder:
        cfg, start = plan.config.graph_encoder, plan.head.node_start
        view, text = plan.knowledge.encoder_view(plan.scales)
        return cls(view=view, text_features=text, dim=plan.config.model.embed_dim, rgcn_layers=cfg.layers,
                   rgcn_bases=cfg.bases, dropout=cfg.dropout, embedding_std=start.spread,
                   center_text=start.centre_text, lr_scale=cfg.lr_scale)

    def parameter_groups(self, lr: float) -> list[dict]:
        """Its optimiser groups: every weight at its own rate (`lr_scale` times the run's `lr`)."""
        return [{"params": list(self.parameters()), "lr": lr * self.lr_scale}]

    def rows(self) -> dict[str, tuple[str, list[int]]]:
        """Weights whose rows belong to one graph node or relation each (`kgnet.models.transfer`
        carries them over by the node's IRI and the relation's name)."""
        rows = {"encoder.input.embedding.weight": ("node", self.node_ids.tolist())}
        for i, layer in enumerate(self.encoder.layers):
            if hasattr(layer.conv, "comp"):
                rows[f"encoder.layers.{i}.conv.comp"] = ("relation", list(range(layer.conv.comp.shape[0])))
        return rows

    def _encode(self) -> Tensor:
        return self.encoder(self.text_features, self.text_mask)

    def _weights_key(self) -> tuple:
        tensors = [*self.encoder.parameters(), *self.buffers()]
        return tuple((t.data_ptr(), t._version, t.dtype) for t in tensors if t is not None)

    def node_embeddings(self) -> Tensor:
        """Embeddings [n, dim] of every node in view (cached in eval mode, see the module doc)."""
        if self.training:
            self._cache = None
            return self._encode()
        key = self._weights_key()
        if self._cache is None or self._cache[0] != key:
            # a normal float32 tensor even under inference_mode or autocast, so any later
            # forward (with gradients for Grad-CAM, or without autocast) may use it
            with torch.inference_mode(False), torch.no_grad(), torch.autocast(self.node_ids.device.type,
                                                                                enabled=False):
                self._cache = (key, self._encode())
        return self._cache[1]

    def token_embeddings(self, nodes: Tensor) -> Tensor:
        """The knowledge tokens' rows [t, dim] of the node embeddings `nodes` [n, dim] (what the
        infusion attends over).

        With the `wide` scale every node is a token: `nodes` itself, without the gather (and
        its scatter in backward).
        """
        # token_index is sorted and unique: as many tokens as nodes is every node, in order
        return nodes if len(self.token_index) == len(nodes) else nodes[self.token_index]

    @property
    def token_labels(self) -> list[str]:
        """The name of each knowledge token (the infusion attention's last axis)."""
        return [self.node_labels[i] for i in self.token_index.tolist()]

    @property
    def token_node_ids(self) -> Tensor:
        """[t] full-graph id of each knowledge token."""
        return self.node_ids[self.token_index]

    @property
    def cached(self) -> bool:
        """Whether eval-mode node embeddings are cached now."""
        return self._cache is not None

    @property
    def idle_relations(self) -> bool:
        """Whether the R-GCN's relation weights go unused: message passing over no edges (the
        `empty` control), the one case where DDP must look for unused parameters."""
        graph = self.encoder.graph
        return graph is not None and graph.num_edges == 0

    @property
    def dim(self) -> int:
        return self.encoder.norm.normalized_shape[0]

    def train(self, mode: bool = True) -> "GraphEncoder":
        self._cache = None
        return super().train(mode)

    def _apply(self, fn, recurse: bool = True):  # .to(), .half(): the cached copy would be stale
        self._cache = None
        return super()._apply(fn, recurse)

    def local_ids(self, node_ids: Tensor) -> Tensor:
        """Local ids of full-graph `node_ids`; KeyError for a node the scales leave out of view."""
        return local_ids(self.node_ids, node_ids)

    def extra_repr(self) -> str:
        graph = self.encoder.graph
        return (f"nodes={len(self.node_ids)}, tokens={len(self.token_index)}, classes={len(self.class_index)}, "
                f"edges={graph.num_edges if graph is not None else 0}, text_nodes={int(self.text_mask.sum())}")


@register_part("inductive_graph_encoder")
class InductiveGraphEncoder(GraphEncoder):
    """The R-GCN with inductive node inputs: text and neighbours predict a node's embedding, and
    each node's learned input is a correction that starts at zero and is weight-decayed
    (`graph_encoder.correction_decay`), the structure of GCNZ (Wang et al., CVPR 2018) and DGP
    (Kampffmeyer et al., CVPR 2019). A node added to the ontology after training (correction
    zero) gets its embedding from its text and its relations through the trained weights. Without
    text (the `no_text` control) the trained nodes' inputs start spread as free vectors do, or every
    node would start at the same embedding and the model would have nothing to learn from."""

    @classmethod
    def settings(cls, config: Config, variant: Variant) -> set[str]:
        """The R-GCN's settings and the corrections' decay."""
        return super().settings(config, variant) | {"graph_encoder.correction_decay"}

    @classmethod
    def build(cls, plan: Plan) -> InductiveGraphEncoder:
        encoder = super().build(plan)
        encoder.correction_decay = plan.config.graph_encoder.correction_decay
        if encoder.text_features is not None:
            with torch.no_grad():
                encoder.encoder.input.embedding.weight.zero_()
        return encoder

    def parameter_groups(self, lr: float) -> list[dict]:
        """The corrections in a group of their own, at `correction_decay`; the rest as the R-GCN's."""
        correction = self.encoder.input.embedding.weight
        rest = [p for p in self.parameters() if p is not correction]
        return [{"params": rest, "lr": lr * self.lr_scale},
                {"params": [correction], "lr": lr * self.lr_scale, "weight_decay": self.correction_decay}]


class NoGraphEncoder(Part, nn.Module):
    """What a model without a graph encoder has in its place: no parameters, no node embeddings;
    its heads learn their node vectors themselves (`OwnVectors`)."""

    slot = "graph_encoder"
    stream = "knowledge"
    lr_scale = 1.0
    idle_relations = False
    token_labels: list[str] = []

    @classmethod
    def node_vectors(cls, plan: Plan) -> NodeVectors:
        return OwnVectors()

    @classmethod
    def build(cls, plan: Plan) -> NoGraphEncoder:
        return cls()

    def parameter_groups(self, lr: float) -> list[dict]:
        return [{"params": [], "lr": lr}]

    def node_embeddings(self) -> None:
        return None

    def token_embeddings(self, nodes: None) -> None:
        return None
