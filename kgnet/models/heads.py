"""The heads that turn (fused) visual features into class logits, and what every head returns.

Each head declares what it reads and does, so the model and the training loop ask the head
instead of testing which part is set (the registry of heads, with what each needs from a run,
is `kgnet.models.head_registry`):

- `reads`: `pooled` (the backbone's own pooling of the tokens) or `tokens` ([B, T, C]);
- `aligns`: whether the variant trains an alignment stage (image embedding -> class node);
- `explains`: `gradcam` (a map of the logit's gradient), `attention` (which knowledge tokens the
  image attended to) or `contributions` (exact concept shares of each logit).

`MLPHead` is the baseline's head (pool + MLP, nothing else). `PrototypeHead` is the paper's:
the MLP's hidden layer is the image embedding z, which the alignment loss pulls towards its
class node, and the logits mix the MLP with scaled cosines of z against the class nodes'
embeddings, so any node in view can be scored, a class without training images included.
The concept head is `kgnet.models.concept_head.ConceptHead`.
"""

from __future__ import annotations

import math
from typing import ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class HeadOutput(NamedTuple):
    """What a head returns.

    Attributes:
        logits: [B, K].
        embedding: [B, d] the image embedding z (the concept activations for the concept head).
        prototype_logits: [B, K] the prototype head's cosine logits; None for the others.
        concepts: [B, M] the concept head's concept activations; None for the others.
    """

    logits: Tensor
    embedding: Tensor
    prototype_logits: Tensor | None = None
    concepts: Tensor | None = None


class MLPHead(nn.Module):
    """pooled [B, C] -> Linear -> z [B, d] -> GELU -> Dropout -> Linear -> logits [B, K]."""

    reads: ClassVar[str] = "pooled"
    aligns: ClassVar[bool] = False
    explains: ClassVar[str] = "gradcam"

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


class CosineScores(nn.Module):
    r"""Logits :math:`s \cos(\mathbf{z}, \mathbf{h}_k)` with a learnable scale :math:`s = 1/\tau`.

    The scale is learned in log space and capped (as in CLIP) so the logits cannot blow up.
    """

    def __init__(self, *, init_scale: float = 10.0, max_scale: float = 100.0) -> None:
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


class PrototypeHead(nn.Module):
    """logits = (1 - w) MLP(z) + w s cos(z, h_class) over the pooled features (the paper's head)."""

    reads: ClassVar[str] = "pooled"
    aligns: ClassVar[bool] = True
    explains: ClassVar[str] = "attention"

    def __init__(self, *, mlp: MLPHead, class_index: Tensor, weight: float = 0.5) -> None:
        """Args:
            mlp: The MLP head whose hidden layer is the image embedding z.
            class_index: [K] the class nodes' rows of the node embeddings.
            weight: w, the prototype logits' share.
        """
        super().__init__()
        self.mlp = mlp
        self.prototype = CosineScores()
        self.weight = weight
        self.register_buffer("class_index", class_index.clone(), persistent=False)

    @property
    def num_classes(self) -> int:
        return self.mlp.num_classes

    @property
    def embed_dim(self) -> int:
        return self.mlp.embed_dim

    def forward(self, pooled: Tensor, nodes: Tensor) -> HeadOutput:
        out = self.mlp(pooled)
        prototype_logits = self.prototype(out.embedding, nodes[self.class_index])
        w = self.weight
        logits = out.logits if w == 0 else prototype_logits if w == 1 else (1 - w) * out.logits + w * prototype_logits
        return HeadOutput(logits, out.embedding, prototype_logits)

    def extra_repr(self) -> str:
        return f"weight={self.weight}"
