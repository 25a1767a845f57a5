"""`KgnetModel`: one classifier composed of parts, each with one job, and what it returns.

    images -> backbone (timm) -> visual tokens V
    RDF graph -> graph encoder (R-GCN) -> node embeddings H            (optional)
    V' = infusion(V, H[knowledge tokens])  (cross-attention)          (optional)
    head(V' or its pooling, H) -> logits                               (a registry: heads.py)

The baseline is the backbone and `MLPHead`, nothing else. The default kgnet is the backbone and
the concept head (chosen on validation, issue 20); `kgnet-composed` has all four parts: the
R-GCN's node embeddings are the concept head's concept vectors and the infusion's keys and
values. The paper's design is the same composition with `PrototypeHead`. A part that is absent
is None and costs nothing; no model builds a part its forward does not run (the trainer's DDP
looks for unused parameters only where a backbone's own pooling layers go unread or an
alignment stage leaves the classifier out).

It follows timm's model contract: `forward_features(images)` gives the backbone's features
(feature map or token sequence, in the backbone's layout) with the knowledge fused in, and
`forward_head(features, pre_logits=False)` the logits, or with `pre_logits=True` the image
embedding z. `forward` does both and returns a `KgnetOutput` with what training and
explanations read besides the logits. An earlier backbone stage listed in `stage_infusion`
is fused on the way (a forward hook replaces that stage's output by its fused tokens, so the
later stages see the knowledge).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

from torch import Tensor, nn

from kgnet.models.backbone import Backbone
from kgnet.models.class_concepts import ClassConcepts
from kgnet.models.graph_encoder import GraphEncoder
from kgnet.models.infusion import InfusionBlock


class KgnetOutput(NamedTuple):
    """What a forward pass returns (a NamedTuple, so DDP and torch.compile see its tensors).

    Attributes:
        logits: [B, K] the logits to train and predict with.
        embedding: [B, d] the image embedding z (what the alignment loss aligns; the concept
            activations with the concept head).
        prototype_logits: [B, K] scaled cosine of z with the class nodes (prototype head only).
        attention: [B, heads, T, t] last-stage attention of the T spatial tokens (a ViT's
            prefix tokens attend too, but have no place on the grid) over the t knowledge
            tokens (`model.token_node_ids` names them); None without infusion.
        node_embeddings: [t, d] the knowledge tokens' embeddings; None without a graph encoder.
        class_embeddings: [K, d] the class nodes' embeddings (the alignment loss's targets);
            None without a graph encoder.
        token_grid: (H, W) of the T visual tokens (T = H * W), for drawing attention maps.
        stage_attention: earlier stage -> its attention [B, heads, T_s, t].
        concepts: [B, M] the concept head's concept activations (`model.concept_names` names
            them); None with other heads.
    """

    logits: Tensor
    embedding: Tensor
    prototype_logits: Tensor | None
    attention: Tensor | None
    node_embeddings: Tensor | None
    class_embeddings: Tensor | None
    token_grid: tuple[int, int]
    stage_attention: dict[int, Tensor]
    concepts: Tensor | None = None


class KgnetModel(nn.Module):
    """backbone -> (graph encoder, infusion) -> head; see the module docstring."""

    def __init__(
        self,
        *,
        backbone: Backbone,
        head: nn.Module,
        graph_encoder: GraphEncoder | None = None,
        infusion: InfusionBlock | None = None,
        stage_infusion: dict[int, InfusionBlock] | None = None,
    ) -> None:
        """Args:
            backbone: Visual tokens from a timm model.
            head: A head of `kgnet.models.heads` (or the concept head): it says what it reads.
            graph_encoder: Node embeddings of the graph; None = no knowledge graph.
            infusion: Cross-attention of the last visual tokens over the knowledge tokens.
            stage_infusion: Earlier stage (index into `backbone.feature_info`) -> its block.
        """
        super().__init__()
        if (infusion is not None or stage_infusion) and graph_encoder is None:
            raise ValueError("infusion fuses node embeddings: it needs a graph encoder")
        self.backbone = backbone
        self.graph_encoder = graph_encoder
        self.infusion = infusion
        self.stage_infusion = nn.ModuleDict({str(s): b for s, b in (stage_infusion or {}).items()})
        self.head = head
        self._stage_nodes: Tensor | None = None  # knowledge tokens during a forward
        self._stage_attention: dict[int, Tensor] = {}
        for stage in self.early_stages:
            module = backbone.model.get_submodule(backbone.feature_info[stage]["module"])
            module.register_forward_hook(functools.partial(self._infuse_stage, stage))

    @property
    def early_stages(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.stage_infusion)

    @property
    def infusion_blocks(self) -> list[InfusionBlock]:
        """Every infusion block, the last stage's first (what a concept mask hides keys in)."""
        return ([self.infusion] if self.infusion is not None else []) + list(self.stage_infusion.values())

    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    @property
    def embed_dim(self) -> int:
        """Width of the image embedding z (the concept count with a concept head)."""
        return self.head.embed_dim

    @property
    def class_concepts(self) -> ClassConcepts | None:
        """The concept head's class-concept matrix (names, node ids, hop distances)."""
        return getattr(self.head, "matrix", None)

    @property
    def concept_names(self) -> list[str] | None:
        """The concept head's concepts, in the order of `KgnetOutput.concepts`."""
        return self.class_concepts.names if self.class_concepts is not None else None

    @property
    def token_node_ids(self) -> Tensor | None:
        """[t] full-graph id of each knowledge token (the attention's last axis)."""
        encoder = self.graph_encoder
        return encoder.node_ids[encoder.token_index] if encoder is not None else None

    @property
    def token_labels(self) -> list[str] | None:
        """The name of each knowledge token (the attention's last axis), for explanations."""
        encoder = self.graph_encoder
        return [encoder.node_labels[i] for i in encoder.token_index.tolist()] if encoder is not None else None

    def node_embeddings(self) -> Tensor | None:
        """H [n, d] of every node in view (cached in eval mode); None without a graph encoder."""
        return self.graph_encoder.node_embeddings() if self.graph_encoder is not None else None

    def _infuse(self, block: InfusionBlock, features: Tensor, nodes: Tensor) -> tuple[Tensor, Tensor, tuple[int, int]]:
        """`features` with every token fused by `block`; the spatial tokens' attention and grid."""
        tokens, grid = self.backbone.to_tokens(features)
        fused, attention = block(tokens, nodes)
        prefix = self.backbone.num_prefix_tokens if features.ndim == 3 else 0
        return self.backbone.from_tokens(features, fused), attention[:, :, prefix:], grid

    def _infuse_stage(self, stage: int, module: nn.Module, args: Any, output: Tensor) -> Tensor | None:
        if self._stage_nodes is None:  # the backbone run on its own, outside `forward`
            return None
        fused, attention, _ = self._infuse(self.stage_infusion[str(stage)], output, self._stage_nodes)
        self._stage_attention[stage] = attention
        return fused

    def _features(self, images: Tensor, nodes: Tensor | None):
        """Fused features, the last stage's attention and grid, and the earlier stages' attention."""
        if self.infusion is None:
            features = self.backbone.forward_features(images)
            return features, None, self.backbone.to_tokens(features)[1], {}
        token_nodes = self.graph_encoder.token_embeddings(nodes)
        self._stage_nodes, self._stage_attention = token_nodes, {}
        try:
            features = self.backbone.forward_features(images)
        finally:
            self._stage_nodes, stage_attention = None, self._stage_attention
            self._stage_attention = {}
        features, attention, grid = self._infuse(self.infusion, features, token_nodes)
        return features, attention, grid, stage_attention

    def head_input(self, features: Tensor) -> Tensor:
        """What the head reads of `forward_features`' output: the pooled feature or the tokens."""
        return self.backbone.pool(features) if self.head.reads == "pooled" else self.backbone.to_tokens(features)[0]

    def forward_features(self, images: Tensor) -> Tensor:
        """The backbone's features of `images` with the knowledge fused in (timm's contract)."""
        return self._features(images, self.node_embeddings())[0]

    def forward_head(self, features: Tensor, pre_logits: bool = False) -> Tensor:
        """Logits [B, K] from `forward_features`' output, or with `pre_logits` the embedding z [B, d]."""
        out = self.head(self.head_input(features), self.node_embeddings())
        return out.embedding if pre_logits else out.logits

    def forward(self, images: Tensor) -> KgnetOutput:
        """Classify `images` [B, in_chans, H, W]; see `KgnetOutput`."""
        nodes = self.node_embeddings()
        features, attention, grid, stage_attention = self._features(images, nodes)
        out = self.head(self.head_input(features), nodes)
        encoder = self.graph_encoder
        return KgnetOutput(logits=out.logits, embedding=out.embedding, prototype_logits=out.prototype_logits,
                           attention=attention,
                           node_embeddings=encoder.token_embeddings(nodes) if encoder is not None else None,
                           class_embeddings=nodes[encoder.class_index] if encoder is not None else None,
                           token_grid=grid, stage_attention=stage_attention, concepts=out.concepts)

    def prototype_logits(self, embedding: Tensor, node_ids: Tensor | list[int] | None = None) -> Tensor:
        """Score image embeddings [B, d] against any nodes in view, by the prototype head.

        Args:
            embedding: Image embeddings z (`KgnetOutput.embedding`).
            node_ids: Full-graph ids of the nodes to score, e.g. a class that had no training
                images or, with the `wide` scale, any concept; None = the classes.

        Returns:
            [B, len(node_ids)] logits; their embeddings come from the graph alone.
        """
        prototype = getattr(self.head, "prototype", None)
        if prototype is None or self.graph_encoder is None:
            raise RuntimeError("this model has no prototype head: it scores no node embeddings")
        nodes = self.graph_encoder.node_embeddings()
        index = self.graph_encoder.class_index if node_ids is None else self.graph_encoder.local_ids(node_ids)
        return prototype(embedding, nodes[index])

    def param_counts(self) -> dict[str, int]:
        """Parameters by part: backbone, knowledge (graph encoder and infusion; 0 for the
        baseline), head, total."""
        def count(module: nn.Module | None) -> int:
            return sum(p.numel() for p in module.parameters()) if module is not None else 0

        counts = {"backbone": count(self.backbone),
                  "knowledge": count(self.graph_encoder) + count(self.infusion) + count(self.stage_infusion),
                  "head": count(self.head)}
        counts["total"] = sum(counts.values())
        return counts
