"""`KgnetModel`: backbone -> (knowledge infusion) -> the backbone's pooling -> heads, and what it returns.

One class serves both sides of every comparison. The baseline is `KgnetModel` without a
`knowledge` module: the timm backbone, its own pooling and head norm, and `MLPHead`. The
knowledge-injected model adds `knowledge` (a `KnowledgeInjection`) and nothing else, so
parameters split cleanly into backbone / knowledge / head, and with every scale off the two
are the same architecture, parameter for parameter.

It follows timm's model contract: `forward_features(images)` gives the backbone's features
(feature map or token sequence, in the backbone's layout) with the knowledge fused in, and
`forward_head(features, pre_logits=False)` the logits, or with `pre_logits=True` the image
embedding z. `forward` does both and returns a `KgnetOutput` with what training and
explanations read besides the logits.

Forward with knowledge (`kgnet.models.scales` says what each scale changes):

1. node embeddings H [n, d] from the knowledge encoder (cached in eval mode);
2. the backbone's features; an earlier stage listed in `knowledge.early_infusion_stages` is
   fused on the way (a forward hook replaces that stage's output by its fused tokens, so the
   later stages see the knowledge);
3. every token of the last features (a ViT's class token too, as its head reads it) becomes
   V' = InfusionBlock(V, H[token nodes]);
4. the backbone's own pooling of V' (`Backbone.pool`), then z and the MLP logits from
   `MLPHead`; prototype logits s cos(z, H[class nodes]); logits = (1 - w) MLP + w prototype,
   w = `knowledge.prototype_weight`.

With a concept head (`knowledge.head="concept"`, `kgnet.models.concept_head`) there is no
`knowledge` module: the logits are the concept head's, an exact linear function of the
activations of the ontology's concepts over the backbone's tokens, and the image embedding z
is that concept activation vector. The MLP head is kept (same parameters as the baseline) but
not used for the logits.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

from torch import Tensor, nn

from kgnet.models.backbone import Backbone
from kgnet.models.class_concepts import ClassConcepts
from kgnet.models.concept_head import ConceptHead
from kgnet.models.heads import MLPHead
from kgnet.models.injection import KnowledgeInjection


class KgnetOutput(NamedTuple):
    """What a forward pass returns (a NamedTuple, so DDP and torch.compile see its tensors).

    Attributes:
        logits: [B, K] the logits to train and predict with.
        embedding: [B, d] the image embedding z (what the alignment loss aligns).
        mlp_logits: [B, K] the MLP head's logits.
        prototype_logits: [B, K] scaled cosine of z with the class nodes; None for the baseline.
        attention: [B, heads, T, t] last-stage attention of the T spatial tokens (a ViT's
            prefix tokens attend too, but have no place on the grid) over the t knowledge
            tokens (`model.token_node_ids` names them); None for the baseline.
        node_embeddings: [t, d] the knowledge tokens' embeddings; None for the baseline.
        class_embeddings: [K, d] the class nodes' embeddings (the prototypes, and the targets
            of the alignment loss); None for the baseline.
        token_grid: (H, W) of the T visual tokens (T = H * W), for drawing attention maps.
        stage_attention: earlier stage -> its attention [B, heads, T_s, t].
        concepts: [B, M] the concept head's concept activations (`model.concept_names` names
            them); None without a concept head.
    """

    logits: Tensor
    embedding: Tensor
    mlp_logits: Tensor
    prototype_logits: Tensor | None
    attention: Tensor | None
    node_embeddings: Tensor | None
    class_embeddings: Tensor | None
    token_grid: tuple[int, int]
    stage_attention: dict[int, Tensor]
    concepts: Tensor | None = None


class KgnetModel(nn.Module):
    """An image classifier with optional knowledge injection (see the module docstring)."""

    def __init__(
        self,
        *,
        backbone: Backbone,
        head: MLPHead,
        knowledge: KnowledgeInjection | None = None,
        prototype_weight: float = 0.5,
        early_stages: tuple[int, ...] = (),
        concept_head: ConceptHead | None = None,
        class_concepts: ClassConcepts | None = None,
        concept_infusion: bool = False,
    ) -> None:
        """Args:
            backbone: Visual tokens from a timm model.
            head: The MLP head over the pooled tokens.
            knowledge: The knowledge injection; None = the baseline.
            prototype_weight: w in logits = (1 - w) MLP + w prototype (with knowledge).
            early_stages: Earlier stages (indices into `backbone.feature_info`) fused by
                `knowledge.stage_infusion[str(stage)]`.
            concept_head: Class scores from ontology concepts (replaces the logits).
            class_concepts: The concepts' names, node ids and hop distances (explanations).
        """
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.knowledge = knowledge
        self.prototype_weight = prototype_weight
        self.early_stages = tuple(early_stages)
        self.concept_head = concept_head
        self.class_concepts = class_concepts
        self.infuses = knowledge is not None and (concept_head is None or concept_infusion)
        graph_concepts = concept_head is not None and concept_head.concepts is None
        self.register_buffer("concept_nodes", knowledge.local_ids(class_concepts.node_ids)
                             if graph_concepts else None, persistent=False)
        self._stage_nodes: Tensor | None = None  # knowledge tokens during a forward
        self._stage_attention: dict[int, Tensor] = {}
        for stage in self.early_stages:
            module = backbone.model.get_submodule(backbone.feature_info[stage]["module"])
            module.register_forward_hook(functools.partial(self._infuse_stage, stage))

    @property
    def num_classes(self) -> int:
        return self.head.classifier.out_features

    @property
    def embed_dim(self) -> int:
        """Width of the image embedding z (the concept count with a concept head)."""
        if self.concept_head is not None:
            return self.concept_head.base_weights.shape[1]
        return self.head.embed.out_features

    @property
    def concept_names(self) -> list[str] | None:
        """The concept head's concepts, in the order of `KgnetOutput.concepts`."""
        return self.class_concepts.names if self.class_concepts is not None else None

    @property
    def token_node_ids(self) -> Tensor | None:
        """[t] full-graph id of each knowledge token (the attention's last axis)."""
        if self.knowledge is None:
            return None
        return self.knowledge.node_ids[self.knowledge.token_index]

    @property
    def token_labels(self) -> list[str] | None:
        """The name of each knowledge token (the attention's last axis), for explanations."""
        if self.knowledge is None:
            return None
        return [self.knowledge.node_labels[i] for i in self.knowledge.token_index.tolist()]

    def _infuse(self, block, features: Tensor, nodes: Tensor) -> tuple[Tensor, Tensor, tuple[int, int]]:
        """`features` with every token fused by `block`; the spatial tokens' attention and grid."""
        tokens, grid = self.backbone.to_tokens(features)
        fused, attention = block(tokens, nodes)
        prefix = self.backbone.num_prefix_tokens if features.ndim == 3 else 0
        return self.backbone.from_tokens(features, fused), attention[:, :, prefix:], grid

    def _infuse_stage(self, stage: int, module: nn.Module, args: Any, output: Tensor) -> Tensor | None:
        if self._stage_nodes is None:  # the backbone run on its own, outside `forward`
            return None
        fused, attention, _ = self._infuse(self.knowledge.stage_infusion[str(stage)], output, self._stage_nodes)
        self._stage_attention[stage] = attention
        return fused

    def _node_embeddings(self) -> Tensor | None:
        return self.knowledge.node_embeddings() if self.knowledge is not None else None

    def _features(self, images: Tensor, nodes: Tensor | None):
        """Fused features, the last stage's attention and grid, and the earlier stages' attention."""
        if not self.infuses:
            features = self.backbone.forward_features(images)
            return features, None, self.backbone.to_tokens(features)[1], {}
        token_nodes = self.knowledge.token_embeddings(nodes)
        self._stage_nodes, self._stage_attention = token_nodes, {}
        try:
            features = self.backbone.forward_features(images)
        finally:
            self._stage_nodes, stage_attention = None, self._stage_attention
            self._stage_attention = {}
        features, attention, grid = self._infuse(self.knowledge.infusion, features, token_nodes)
        return features, attention, grid, stage_attention

    def _head(self, features: Tensor, nodes: Tensor | None) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """The image embedding z, the logits, the MLP logits and the prototype logits (or None)."""
        if self.concept_head is not None:  # z = the concept activations
            vectors = nodes[self.concept_nodes] if self.concept_nodes is not None else None
            logits, concepts = self.concept_head(self.backbone.to_tokens(features)[0], vectors)
            return concepts, logits, logits, None
        embedding, mlp_logits = self.head(self.backbone.pool(features))
        if self.knowledge is None:
            return embedding, mlp_logits, mlp_logits, None
        prototype_logits = self.knowledge.prototype(embedding, nodes[self.knowledge.class_index])
        w = self.prototype_weight
        logits = mlp_logits if w == 0 else prototype_logits if w == 1 else (1 - w) * mlp_logits + w * prototype_logits
        return embedding, logits, mlp_logits, prototype_logits

    def forward_features(self, images: Tensor) -> Tensor:
        """The backbone's features of `images` with the knowledge fused in (timm's contract)."""
        return self._features(images, self._node_embeddings())[0]

    def forward_head(self, features: Tensor, pre_logits: bool = False) -> Tensor:
        """Logits [B, K] from `forward_features`' output, or with `pre_logits` the embedding z [B, d]."""
        embedding, logits, _, _ = self._head(features, self._node_embeddings())
        return embedding if pre_logits else logits

    def forward(self, images: Tensor) -> KgnetOutput:
        """Classify `images` [B, in_chans, H, W]; see `KgnetOutput`."""
        nodes = self._node_embeddings()
        features, attention, grid, stage_attention = self._features(images, nodes)
        embedding, logits, mlp_logits, prototype_logits = self._head(features, nodes)
        knows = self.knowledge is not None
        return KgnetOutput(logits=logits, embedding=embedding, mlp_logits=mlp_logits,
                           prototype_logits=prototype_logits, attention=attention,
                           node_embeddings=self.knowledge.token_embeddings(nodes) if knows else None,
                           class_embeddings=nodes[self.knowledge.class_index] if knows else None,
                           token_grid=grid, stage_attention=stage_attention,
                           concepts=embedding if self.concept_head is not None else None)

    def prototype_logits(self, embedding: Tensor, node_ids: Tensor | list[int] | None = None) -> Tensor:
        """Score image embeddings [B, d] against any nodes in view, by the prototype head.

        Args:
            embedding: Image embeddings z (`KgnetOutput.embedding`).
            node_ids: Full-graph ids of the nodes to score, e.g. a class that had no training
                images or, with the `wide` scale, any concept; None = the classes.

        Returns:
            [B, len(node_ids)] logits; their embeddings come from the graph alone.
        """
        knowledge = self._require_knowledge()
        nodes = knowledge.node_embeddings()
        index = knowledge.class_index if node_ids is None else knowledge.local_ids(node_ids)
        return knowledge.prototype(embedding, nodes[index])

    def _require_knowledge(self) -> KnowledgeInjection:
        if self.knowledge is None:
            raise RuntimeError("this model is a baseline: it has no knowledge embeddings")
        return self.knowledge

    def param_counts(self) -> dict[str, int]:
        """Parameters by part: backbone, knowledge (0 for the baseline), head, total."""
        def count(module: nn.Module | None) -> int:
            return sum(p.numel() for p in module.parameters()) if module is not None else 0

        counts = {"backbone": count(self.backbone), "knowledge": count(self.knowledge) + count(self.concept_head),
                  "head": count(self.head)}
        counts["total"] = sum(counts.values())
        return counts

    def extra_repr(self) -> str:
        return f"prototype_weight={self.prototype_weight}, early_stages={self.early_stages}"
