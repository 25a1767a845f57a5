"""A concept head whose class scores are an exact linear function of concept activations.

    tokens V [B, T, C] -> u_t = W V_t [B, T, d]
    concept activation  c_j(x) = pool_t cos(u_t, e_j)        (pool: max or mean over tokens)
    class logits        s_k(x) = scale * sum_j A_kj c_j(x)

A [K, M] comes from the ontology (`kgnet.models.class_concepts`): its support is fixed, and
its values are either fixed or learned non-negative on the support only. Removing concept j
(c_j := 0) moves class k's logit by exactly `scale * A_kj * c_j`, so a contribution is an
explanation, not an attention weight. A class without training images is still scored from its
row of A (zero-shot), through concepts other classes trained. The concept vectors e_j are free
parameters (a model from scratch cannot ground words), optionally initialised from text.
With A = identity this is a cosine classifier: the knowledge-free control.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ConceptHead(nn.Module):
    """Class logits = scale * A c(x); see the module doc.

    Args:
        in_dim: C, the token width.
        embed_dim: d, the concept space width.
        weights: A [K, M], non-negative.
        pool: "max" or "mean" over tokens.
        learn_weights: Learn A's values (non-negative, on its support; starting at A).
        init_scale: Starting logit scale (learned in log space, capped at max_scale).
        concept_init: Optional [M, d] starting concept vectors (e.g. projected text).
        fixed_concepts: Concept vectors fixed orthonormal (needs d >= M): the class geometry
            is then A's alone (prototype k = sum_j A_kj e_j), nothing learns it away.
    """

    def __init__(self, *, in_dim: int, embed_dim: int, weights: Tensor, pool: str = "max",
                 learn_weights: bool = False, init_scale: float = 10.0, max_scale: float = 100.0,
                 concept_init: Tensor | None = None, fixed_concepts: bool = False) -> None:
        super().__init__()
        if pool not in ("max", "mean"):
            raise ValueError(f"pool must be max or mean, got {pool!r}")
        self.pool = pool
        self.max_scale = max_scale
        self.proj = nn.Linear(in_dim, embed_dim)
        m = weights.shape[1]
        if fixed_concepts:
            if embed_dim < m:
                raise ValueError(f"fixed_concepts needs embed_dim >= {m} concepts, got {embed_dim}")
            basis, _ = torch.linalg.qr(torch.randn(embed_dim, m))
            self.register_buffer("concepts", basis.T.contiguous())
        else:
            init = concept_init if concept_init is not None else torch.randn(m, embed_dim)
            self.concepts = nn.Parameter(init.clone().float())
        self.register_buffer("base_weights", weights.float().clone())
        self.learn_weights = learn_weights
        if learn_weights:
            self.weight_logits = nn.Parameter(torch.zeros_like(weights, dtype=torch.float32))
        self.log_scale = nn.Parameter(torch.tensor(math.log(init_scale)))

    @property
    def scale(self) -> Tensor:
        return self.log_scale.exp().clamp(max=self.max_scale)

    @property
    def weights(self) -> Tensor:
        """The effective A [K, M] (zero off the ontology's support)."""
        if not self.learn_weights:
            return self.base_weights
        # exp keeps it positive and equal to A at the start; zero stays zero
        return self.base_weights * self.weight_logits.exp()

    def token_scores(self, tokens: Tensor) -> Tensor:
        """cos(u_t, e_j) [B, T, M]: which token activates which concept (the region)."""
        u = F.normalize(self.proj(tokens), dim=-1)
        return u @ F.normalize(self.concepts, dim=-1).T

    def concept_activations(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """c(x) [B, M] and the per-token scores [B, T, M]."""
        scores = self.token_scores(tokens)
        c = scores.amax(1) if self.pool == "max" else scores.mean(1)
        return c, scores

    def logits_from_concepts(self, c: Tensor) -> Tensor:
        """scale * c A^T: linear in c, so contributions are exact."""
        return self.scale * c @ self.weights.T

    def contributions(self, c: Tensor) -> Tensor:
        """[B, K, M]: concept j's exact share of class k's logit."""
        return self.scale * c[:, None, :] * self.weights[None]

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Logits [B, K] and concept activations [B, M]."""
        c, _ = self.concept_activations(tokens)
        return self.logits_from_concepts(c), c
