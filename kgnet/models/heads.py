"""Classification heads: an MLP over the pooled feature, and knowledge prototypes.

`MLPHead` is shared by the baseline and the knowledge-injected model: its hidden layer is the
image embedding z (width `model.embed_dim`), the vector the alignment loss pulls towards the
right class node. `PrototypeHead` scores z against node embeddings by scaled cosine
similarity, so any node in view can be scored, including a class that had no training images
(zero-shot): its prototype comes from the graph alone.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MLPHead(nn.Module):
    """pooled [B, C] -> Linear -> z [B, d] -> GELU -> Dropout -> Linear -> logits [B, K]."""

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

    def forward(self, pooled: Tensor) -> tuple[Tensor, Tensor]:
        """The image embedding z [B, d] and the logits [B, K]."""
        embedding = self.embed(pooled)
        return embedding, self.classifier(self.drop(self.act(embedding)))


class PrototypeHead(nn.Module):
    r"""Logits :math:`s \cos(\mathbf{z}, \mathbf{h}_k)` with a learnable scale :math:`s = 1/\tau`.

    The scale is learned in log space and capped (as in CLIP) so the logits cannot blow up.
    """

    def __init__(self, *, init_scale: float = 10.0, max_scale: float = 100.0) -> None:
        """Args:
            init_scale: Starting scale (inverse temperature).
            max_scale: Upper bound of the scale.
        """
        super().__init__()
        self.init_scale = init_scale
        self.max_scale = max_scale
        self.log_scale = nn.Parameter(torch.empty(()))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.constant_(self.log_scale, math.log(self.init_scale))

    @property
    def scale(self) -> Tensor:
        return self.log_scale.exp().clamp(max=self.max_scale)

    def forward(self, embedding: Tensor, prototypes: Tensor) -> Tensor:
        """Logits [B, K] of embeddings [B, d] against prototypes [K, d]."""
        return self.scale * F.normalize(embedding, dim=-1) @ F.normalize(prototypes, dim=-1).T

    def extra_repr(self) -> str:
        return f"init_scale={self.init_scale}, max_scale={self.max_scale}"
