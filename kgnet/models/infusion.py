r"""`InfusionBlock`: knowledge fused into visual tokens by cross-attention (the injection layer).

The paper's "mix-grained infuse layer", written as a pre-norm transformer block whose
attention looks outside the image: each visual token (query) attends over the knowledge
tokens (node embeddings as keys and values), so a token of a shoe's sole can draw on the
"sole" and "footwear" nodes:

.. math::
    \mathbf{V}' = \mathbf{V} + \mathbf{W}_o\,\mathrm{MHA}(\mathbf{W}_q \mathrm{LN}(\mathbf{V}),
    \mathbf{W}_k \mathbf{H}, \mathbf{W}_v \mathbf{H}), \qquad
    \mathbf{V}'' = \mathbf{V}' + \mathrm{MLP}(\mathrm{LN}(\mathbf{V}'))

with MLP = Linear-GELU-Dropout-Linear. The attention runs in a narrow width (`attn_dim`, also
the MLP's hidden width) so the block costs little next to the backbone; its weights
[B, heads, T, N] are returned for explanations (which concepts each image region used).

For faithfulness checks a block can hide knowledge tokens from its keys: inside
`masking_keys(blocks, positions)` the attention logits of those tokens are -inf, so the
remaining weights renormalise over the other tokens as if the masked nodes were absent; with
every token masked nothing is attended (the weights are all zero and the attention adds only
the output projection's bias).

Experimental (issue 13, not used by `create_model`): with `groups=G` the block first pools the
N knowledge tokens into G concept groups, `C = softmax(Q_g (W_g H)^T) H` with G learned
queries, and the visual tokens attend over those G groups instead, so the per-image cost no
longer grows with N (the pooling is done once per forward, whatever the batch). The attention
it returns is then over the groups, [B, heads, T, G]; `group_assignment` [G, N] of the last
forward maps it back to nodes. Masked keys are hidden from the pooling.
"""

from __future__ import annotations

import contextlib
from typing import Iterable, Iterator, Sequence

import torch
from torch import Tensor, nn


class InfusionBlock(nn.Module):
    """Cross-attention from visual tokens to knowledge tokens, then an MLP; both residual."""

    def __init__(
        self, *, token_dim: int, node_dim: int, attn_dim: int = 64, heads: int = 4, dropout: float = 0.1,
        groups: int | None = None, zero_init: bool = False,
    ) -> None:
        """Args:
            token_dim: C, the width of the visual tokens (kept: the block's output has it too).
            node_dim: d, the width of the node embeddings.
            attn_dim: Width of queries, keys and values (split over the heads) and of the
                MLP's hidden layer.
            heads: Attention heads; must divide `attn_dim`.
            dropout: Dropout on the attention output and inside the MLP.
            groups: Experimental: pool the knowledge tokens into this many concept groups
                first (see the module docstring); None attends over every token.
            zero_init: Start both residual branches at zero (the block starts as the identity,
                so the backbone's tokens reach the head unchanged at first).
        """
        super().__init__()
        if attn_dim % heads:
            raise ValueError(f"attention width {attn_dim} is not divisible by {heads} heads")
        self.heads = heads
        self.head_dim = attn_dim // heads
        self.norm = nn.LayerNorm(token_dim)
        self.query = nn.Linear(token_dim, attn_dim)
        self.key_value = nn.Linear(node_dim, 2 * attn_dim)
        self.out = nn.Linear(attn_dim, token_dim)
        self.drop = nn.Dropout(dropout)
        self.mlp_norm = nn.LayerNorm(token_dim)
        self.mlp = nn.Sequential(
            nn.Linear(token_dim, attn_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(attn_dim, token_dim)
        )
        if zero_init:
            for layer in (self.out, self.mlp[-1]):
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)
        #: Positions (along the knowledge-token axis) hidden from the keys; set by `masking_keys`.
        self.masked_keys: Tensor | None = None
        self.groups = groups
        if groups:
            self.group_queries = nn.Parameter(torch.randn(groups, attn_dim) * attn_dim**-0.5)
            self.group_key = nn.Linear(node_dim, attn_dim)
            #: [G, N] how the last forward pooled the knowledge tokens into groups.
            self.group_assignment: Tensor | None = None

    def _pool(self, nodes: Tensor) -> Tensor:
        """[G, d] concept groups of the knowledge tokens `nodes` [N, d]."""
        logits = self.group_queries @ self.group_key(nodes).T * self.group_queries.shape[1] ** -0.5
        if self.masked_keys is not None:
            hidden = torch.zeros(nodes.shape[0], dtype=torch.bool, device=logits.device)
            hidden[self.masked_keys.to(logits.device)] = True
            logits = logits.masked_fill(hidden, torch.finfo(logits.dtype).min)
        self.group_assignment = torch.softmax(logits, dim=-1)
        return self.group_assignment @ nodes

    def forward(self, tokens: Tensor, nodes: Tensor) -> tuple[Tensor, Tensor]:
        """Fuse `nodes` [N, d] into `tokens` [B, T, C].

        Returns:
            The fused tokens [B, T, C] and the attention [B, heads, T, N] (rows sum to 1, or
            are all zero when `masked_keys` hides every token).
        """
        b, t, _ = tokens.shape
        pooled = bool(self.groups)
        if pooled:
            nodes = self._pool(nodes)
        n = nodes.shape[0]
        # heads lead, batch and tokens merged: a few large matmuls instead of B * heads tiny ones
        q = self.query(self.norm(tokens)).view(b * t, self.heads, self.head_dim).transpose(0, 1)
        q = q * self.head_dim**-0.5
        k, v = self.key_value(nodes).view(n, 2, self.heads, self.head_dim).permute(1, 2, 0, 3)
        # explicit softmax (not scaled_dot_product_attention): the weights are an output
        logits = q @ k.transpose(-2, -1)
        if self.masked_keys is None or pooled:
            weights = torch.softmax(logits, dim=-1)
        else:
            hidden = torch.zeros(n, dtype=torch.bool, device=logits.device)
            hidden[self.masked_keys.to(logits.device)] = True
            if bool(hidden.all()):  # nothing left to attend (softmax over all -inf would be NaN)
                weights = torch.zeros_like(logits)
            else:
                weights = torch.softmax(logits.masked_fill(hidden, float("-inf")), dim=-1)
        mixed = (weights @ v).transpose(0, 1).reshape(b, t, self.heads * self.head_dim)
        attention = weights.view(self.heads, b, t, n).transpose(0, 1)
        tokens = tokens + self.drop(self.out(mixed))
        tokens = tokens + self.mlp(self.mlp_norm(tokens))
        return tokens, attention

    def extra_repr(self) -> str:
        return f"heads={self.heads}, head_dim={self.head_dim}" + (f", groups={self.groups}" if self.groups else "")


@contextlib.contextmanager
def masking_keys(blocks: Iterable[InfusionBlock], positions: Sequence[int] | Tensor) -> Iterator[None]:
    """Hide the knowledge tokens at `positions` from the keys of `blocks` for the duration.

    Used to ask "does the prediction depend on this concept?" (concept faithfulness): the
    model runs unchanged except that the masked nodes can no longer be attended to.
    """
    blocks = list(blocks)
    index = torch.as_tensor(positions, dtype=torch.long).reshape(-1)
    previous = [block.masked_keys for block in blocks]
    try:
        for block in blocks:
            block.masked_keys = index
        yield
    finally:
        for block, before in zip(blocks, previous):
            block.masked_keys = before
