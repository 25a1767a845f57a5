"""`KgnetModel`: one classifier composed of parts, each with one job, and what it returns.

    images -> backbone (timm) -> visual tokens V
    RDF graph -> graph encoder (R-GCN) -> node embeddings H
    V' = infusion(V, H[knowledge tokens])  (cross-attention)
    head(V' or its pooling, H) -> logits                      (a registry: kgnet.models.heads)

Every model has the four slots; a variant without a graph encoder or an infusion has
`NoGraphEncoder` / `NoInfusion` there (no parameters, nothing computed), so the model and its
callers ask the parts instead of testing which ones it has. The baseline is the backbone and
`MLPHead`; the default kgnet the backbone and the concept head (chosen on validation, issue 20);
`kgnet-composed` has all four parts (the R-GCN's node embeddings are the concept head's concept
vectors and the infusion's keys and values); the paper's design is the same composition with
the prototype head. No model builds a part its forward does not run.

It follows timm's model contract: `forward_features(images)` gives the backbone's features
(feature map or token sequence, in the backbone's layout) with the knowledge fused in, and
`forward_head(features, pre_logits=False)` the logits, or with `pre_logits=True` the image
embedding z. `forward` does both and returns a `KgnetOutput`.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor, nn

from kgnet.models.backbone import Backbone
from kgnet.models.graph_encoder import GraphEncoder, NoGraphEncoder
from kgnet.models.heads import Head
from kgnet.models.infusion import Infusion, NoInfusion


class KgnetOutput(NamedTuple):
    """What a forward pass returns (a NamedTuple, so DDP and torch.compile see its tensors).

    The head that produced it, and the explanation registered for that head, read the fields
    only some parts fill; nothing else needs to test them.

    Attributes:
        logits: [B, K] the logits to train and predict with.
        embedding: [B, d] the image embedding z (the concept activations with the concept head).
        concepts: [B, M] the concept head's concept activations (its `matrix.names` names them).
        class_embeddings: [K, d] the class nodes' embeddings the prototype head aligns z with.
        attention: [B, heads, T, t] the infusion's last-stage attention of the T spatial tokens
            (a ViT's prefix tokens attend too, but have no place on the grid) over the t knowledge
            tokens (`graph_encoder.token_labels` names them).
        token_grid: (H, W) of the T visual tokens (T = H * W), for drawing maps.
        stage_attention: earlier stage -> its infusion attention [B, heads, T_s, t].
    """

    logits: Tensor
    embedding: Tensor
    concepts: Tensor | None
    class_embeddings: Tensor | None
    attention: Tensor | None
    token_grid: tuple[int, int]
    stage_attention: dict[int, Tensor]


class KgnetModel(nn.Module):
    """backbone -> graph encoder -> infusion -> head; see the module docstring."""

    def __init__(self, *, backbone: Backbone, head: Head, graph_encoder: GraphEncoder | NoGraphEncoder,
                 infusion: Infusion | NoInfusion, variant: str = "") -> None:
        """Args:
            backbone: Visual tokens from a timm model.
            head: A registered head (`kgnet.models.heads`): it says what it reads.
            graph_encoder: Node embeddings of the graph, or `NoGraphEncoder`.
            infusion: Cross-attention of the visual tokens over the knowledge tokens, or `NoInfusion`.
            variant: The variant's name (logs, releases).
        """
        super().__init__()
        self.backbone = backbone
        self.graph_encoder = graph_encoder
        self.infusion = infusion
        self.head = head
        self.variant = variant

    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    @property
    def embed_dim(self) -> int:
        """Width of the image embedding z (the concept count with a concept head)."""
        return self.head.embed_dim

    def node_embeddings(self) -> Tensor | None:
        """H [n, d] of every node the graph encoder sees (cached in eval mode); None without one."""
        return self.graph_encoder.node_embeddings()

    def _seen(self, images: Tensor, nodes: Tensor | None):
        return self.infusion.fuse(self.backbone, images, self.graph_encoder.token_embeddings(nodes))

    def forward_features(self, images: Tensor) -> Tensor:
        """The backbone's features of `images` with the knowledge fused in (timm's contract)."""
        return self._seen(images, self.node_embeddings()).features

    def forward_head(self, features: Tensor, pre_logits: bool = False) -> Tensor:
        """Logits [B, K] from `forward_features`' output, or with `pre_logits` the embedding z [B, d]."""
        out = self.head(self.head.read(self.backbone, features), self.node_embeddings())
        return out.embedding if pre_logits else out.logits

    def forward(self, images: Tensor) -> KgnetOutput:
        """Classify `images` [B, in_chans, H, W]; see `KgnetOutput`."""
        nodes = self.node_embeddings()
        seen = self._seen(images, nodes)
        out = self.head(self.head.read(self.backbone, seen.features), nodes)
        return KgnetOutput(logits=out.logits, embedding=out.embedding, concepts=out.concepts,
                           class_embeddings=out.class_embeddings, attention=seen.attention, token_grid=seen.grid,
                           stage_attention=seen.stage_attention)

    def has_idle_parameters(self) -> bool:
        """Whether a training step leaves some parameter without a gradient, so DDP must look
        for unused parameters: the head's say (an alignment stage, a backbone's pooling-only
        layers under a head that reads tokens) or the R-GCN's relation weights over no edges."""
        return self.head.leaves_idle(self.backbone) or self.graph_encoder.idle_relations

    def parameter_groups(self, lr: float, backbone_scale: float = 1.0) -> list[dict]:
        """The optimiser's parameter groups: the graph encoder's own (at its `lr_scale` times `lr`:
        its weights move the node embeddings of every class at once), the backbone's at
        `backbone_scale` times `lr` (none at 0: a frozen backbone, see `freeze_backbone`), the rest at `lr`."""
        apart = [] if backbone_scale == 1 else list(self.backbone.parameters())  # 1: the same groups as ever
        own = {id(p) for p in [*self.graph_encoder.parameters(), *apart]}
        backbone = [{"params": apart, "lr": lr * backbone_scale}] if apart and backbone_scale else []
        return [{"params": [p for p in self.parameters() if id(p) not in own]}, *backbone,
                *self.graph_encoder.parameter_groups(lr)]

    def freeze_backbone(self) -> None:
        """No gradient for the backbone's weights and no update of its batch-norm statistics: call
        after every `train()` (it sets the backbone back to eval mode)."""
        self.backbone.requires_grad_(False)
        self.backbone.eval()

    def rows(self) -> dict[str, tuple[str, list[int] | None]]:
        """State-dict keys whose rows each belong to one class, graph node or relation, and those
        computed from the ontology (`ontology`): what `kgnet.models.transfer` carries over by
        identity rather than by position."""
        return {f"{slot}.{key}": rows for slot in ("graph_encoder", "infusion", "head")
                for key, rows in getattr(self, slot).rows().items()}

    def param_counts(self) -> dict[str, int]:
        """Parameters by part: backbone, knowledge (graph encoder and infusion; 0 for the
        baseline), head, total."""
        def count(module: nn.Module) -> int:
            return sum(p.numel() for p in module.parameters())

        counts = {"backbone": count(self.backbone), "knowledge": count(self.graph_encoder) + count(self.infusion),
                  "head": count(self.head)}
        counts["total"] = sum(counts.values())
        return counts
