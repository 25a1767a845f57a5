"""`PrototypeHead`: the paper's head, an MLP mixed with scaled cosines to the class nodes.

The MLP's hidden layer is the image embedding z; the alignment (InfoNCE over the classes, the
first `prototype_head.align_epochs` epochs alone, then `align_weight` times it beside the
cross-entropy) pulls z towards its class node's embedding, and the logits mix the MLP with
scaled cosines of z against the class nodes' embeddings from the graph encoder:

    logits = (1 - w) MLP(z) + w s cos(z, h_class)

so any node in view can be scored (`score_nodes`), a class without training images included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kgnet.models.heads import Head, HeadOutput, LogitScale, NodeStart
from kgnet.models.heads.mlp import MLPHead
from kgnet.models.registry import register_part

if TYPE_CHECKING:
    from kgnet.models.factory import Plan


def class_alignment_loss(image_embeddings: Tensor, class_embeddings: Tensor, targets: Tensor, *,
                         temperature: float = 0.1, allowed_classes: Tensor | None = None) -> Tensor:
    """InfoNCE between image embeddings [B, D] and class node embeddings [K, D]: each image's
    cosine (over a temperature) to its own class node against every other class node; classes
    outside `allowed_classes` [K] (held out for zero-shot) are no negatives. The mean over the
    batch (CLIP's image-to-text loss with one text per class)."""
    similarity = F.normalize(image_embeddings, dim=-1) @ F.normalize(class_embeddings, dim=-1).T
    logits = similarity / temperature
    if allowed_classes is not None:
        logits = logits.masked_fill(~allowed_classes.to(logits.device), torch.finfo(logits.dtype).min)
    return F.cross_entropy(logits, targets)


class CosineScores(nn.Module):
    r"""Logits :math:`s \cos(\mathbf{z}, \mathbf{h}_k)` with a learned, capped scale :math:`s`."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = LogitScale()

    def forward(self, embedding: Tensor, prototypes: Tensor) -> Tensor:
        """Logits [B, K] of embeddings [B, d] against prototypes [K, d]."""
        return self.scale() * F.normalize(embedding, dim=-1) @ F.normalize(prototypes, dim=-1).T


@register_part("prototype_head")
class PrototypeHead(Head):
    """logits = (1 - w) MLP(z) + w s cos(z, h_class) over the pooled features (the paper's head)."""

    sections = ("prototype_head", "mlp_head")
    explains = "attention"
    needs_graph_encoder = True
    #: The paper's start: small learned node inputs, raw node text, an infusion that adds at once.
    node_start = NodeStart(spread=0.02, centre_text=False, identity_infusion=False)

    def __init__(self, *, mlp: MLPHead, class_index: Tensor, weight: float = 0.5, align_epochs: int = 1,
                 align_weight: float = 0.1, temperature: float = 0.1) -> None:
        """Args:
            mlp: The MLP head whose hidden layer is the image embedding z.
            class_index: [K] the class nodes' rows of the node embeddings.
            weight: w, the prototype logits' share.
            align_epochs: The first epochs that train the alignment alone.
            align_weight: Weight of the alignment beside the cross-entropy after them.
            temperature: Temperature of the alignment.
        """
        super().__init__()
        self.mlp = mlp
        self.prototype = CosineScores()
        self.weight = weight
        self.align_epochs, self.align_weight, self.temperature = align_epochs, align_weight, temperature
        self.register_buffer("class_index", class_index.clone(), persistent=False)

    @classmethod
    def build(cls, plan: Plan) -> PrototypeHead:
        cfg = plan.config.prototype_head
        return cls(mlp=MLPHead.build(plan), class_index=plan.nodes.class_rows(), weight=cfg.weight,
                   align_epochs=cfg.align_epochs, align_weight=cfg.align_weight, temperature=cfg.temperature)

    def rows(self) -> dict[str, tuple[str, list[int] | None]]:
        return {f"mlp.{key}": rows for key, rows in self.mlp.rows().items()}

    @property
    def num_classes(self) -> int:
        return self.mlp.num_classes

    @property
    def embed_dim(self) -> int:
        return self.mlp.embed_dim

    def forward(self, pooled: Tensor, nodes: Tensor) -> HeadOutput:
        out = self.mlp(pooled)
        classes = nodes[self.class_index]
        prototype_logits = self.prototype(out.embedding, classes)
        w = self.weight
        logits = out.logits if w == 0 else prototype_logits if w == 1 else (1 - w) * out.logits + w * prototype_logits
        return HeadOutput(logits, out.embedding, class_embeddings=classes)

    def score_nodes(self, embedding: Tensor, nodes: Tensor) -> Tensor:
        """Scaled cosines [B, n] of image embeddings [B, d] with any node embeddings [n, d], e.g. a
        class that had no training images, or a concept."""
        return self.prototype(embedding, nodes)

    def loss(self, out: HeadOutput, cross_entropy: Tensor, targets: Tensor, *, seen: Tensor,
             epoch: int) -> tuple[Tensor, Tensor]:
        """The alignment alone in the first `align_epochs`, then cross-entropy plus `align_weight`
        times it; and the alignment term."""
        align = class_alignment_loss(out.embedding, out.class_embeddings, targets, temperature=self.temperature,
                                     allowed_classes=seen)
        return (align if epoch < self.align_epochs else cross_entropy + self.align_weight * align), align

    def leaves_idle(self, backbone) -> bool:
        """The alignment epochs train no classifier."""
        return self.align_epochs > 0

    def extra_repr(self) -> str:
        return f"weight={self.weight}, align_epochs={self.align_epochs}"

