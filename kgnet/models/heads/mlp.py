"""`MLPHead`: the baseline's head, the backbone's own pooling and an MLP, nothing else."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor, nn

from kgnet.models.heads import Head, HeadOutput
from kgnet.models.registry import register_part

if TYPE_CHECKING:
    from kgnet.models.factory import Plan


@register_part("mlp_head")
class MLPHead(Head):
    """pooled [B, C] -> Linear -> z [B, d] -> GELU -> Dropout -> Linear -> logits [B, K]."""

    sections = ("mlp_head",)

    def __init__(self, *, in_dim: int, embed_dim: int, num_classes: int, dropout: float = 0.1) -> None:
        """Args:
            in_dim: C, the width of the pooled feature.
            embed_dim: d, the width of the image embedding.
            num_classes: K.
            dropout: Dropout before the classifier layer.
        """
        super().__init__()
        self.embed = nn.Linear(in_dim, embed_dim)
        self.act = nn.GELU()
        self.drop = nn.Dropout(dropout)
        self.classifier = nn.Linear(embed_dim, num_classes)

    @classmethod
    def build(cls, plan: Plan) -> MLPHead:
        return cls(in_dim=plan.backbone.pooled_features, embed_dim=plan.config.model.embed_dim,
                   num_classes=plan.num_classes, dropout=plan.config.mlp_head.dropout)

    def rows(self) -> dict[str, tuple[str, list[int] | None]]:
        classes = list(range(self.num_classes))
        return {"classifier.weight": ("class", classes), "classifier.bias": ("class", classes)}

    @property
    def num_classes(self) -> int:
        return self.classifier.out_features

    @property
    def embed_dim(self) -> int:
        return self.embed.out_features

    def forward(self, pooled: Tensor, nodes: Tensor | None = None) -> HeadOutput:
        """The logits [B, K] and the image embedding z [B, d] (`nodes` is not read)."""
        embedding = self.embed(pooled)
        return HeadOutput(self.classifier(self.drop(self.act(embedding))), embedding)
