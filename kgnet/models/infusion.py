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

`Infusion` is the registered part: the last stage's block, plus one per earlier backbone stage
in `infusion.early_stages` (a forward hook replaces that stage's output by its fused tokens, so
the later stages see the knowledge). A model without it has `NoInfusion` in its place.
"""

from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING, Any, Iterable, Iterator, NamedTuple, Sequence

import torch
from torch import Tensor, nn

from kgnet.errors import ConfigError
from kgnet.models.backbone import Backbone
from kgnet.models.registry import Part, register_part

if TYPE_CHECKING:
    from kgnet.models.factory import Plan


class InfusionBlock(nn.Module):
    """Cross-attention from visual tokens to knowledge tokens, then an MLP; both residual."""

    def __init__(
        self, *, token_dim: int, node_dim: int, attn_dim: int = 64, heads: int = 4, dropout: float = 0.1,
        identity_start: bool = False,
    ) -> None:
        """Args:
            token_dim: C, the width of the visual tokens (kept: the block's output has it too).
            node_dim: d, the width of the node embeddings.
            attn_dim: Width of queries, keys and values (split over the heads) and of the
                MLP's hidden layer.
            heads: Attention heads; must divide `attn_dim`.
            dropout: Dropout on the attention output and inside the MLP.
            identity_start: Start both residual branches at zero (the block starts as the
                identity, so the backbone's tokens reach the head unchanged at first).
        """
        super().__init__()
        if attn_dim % heads:
            raise ValueError(f"attention width {attn_dim} is not divisible by {heads} heads")
        self.heads = heads
        self.head_dim = attn_dim // heads
        self.identity_start = identity_start
        self.norm = nn.LayerNorm(token_dim)
        self.query = nn.Linear(token_dim, attn_dim)
        self.key_value = nn.Linear(node_dim, 2 * attn_dim)
        self.out = nn.Linear(attn_dim, token_dim)
        self.drop = nn.Dropout(dropout)
        self.mlp_norm = nn.LayerNorm(token_dim)
        self.mlp = nn.Sequential(
            nn.Linear(token_dim, attn_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(attn_dim, token_dim)
        )
        self._start_as_identity()
        #: Positions (along the knowledge-token axis) hidden from the keys; set by `masking_keys`.
        self.masked_keys: Tensor | None = None

    def _start_as_identity(self) -> None:
        """Zero the residual branches' last layers, with `identity_start` (their layers' own
        initialisation has drawn first, so the other weights do not depend on it)."""
        for layer in (self.out, self.mlp[-1]) if self.identity_start else ():
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def reset_parameters(self) -> None:
        for module in (self.norm, self.query, self.key_value, self.out, self.mlp_norm, self.mlp[0], self.mlp[-1]):
            module.reset_parameters()
        self._start_as_identity()

    def forward(self, tokens: Tensor, nodes: Tensor) -> tuple[Tensor, Tensor]:
        """Fuse `nodes` [N, d] into `tokens` [B, T, C].

        Returns:
            The fused tokens [B, T, C] and the attention [B, heads, T, N] (rows sum to 1, or
            are all zero when `masked_keys` hides every token).
        """
        b, t, _ = tokens.shape
        n = nodes.shape[0]
        # heads lead, batch and tokens merged: a few large matmuls instead of B * heads tiny ones
        q = self.query(self.norm(tokens)).view(b * t, self.heads, self.head_dim).transpose(0, 1)
        q = q * self.head_dim**-0.5
        k, v = self.key_value(nodes).view(n, 2, self.heads, self.head_dim).permute(1, 2, 0, 3)
        # explicit softmax (not scaled_dot_product_attention): the weights are an output
        logits = q @ k.transpose(-2, -1)
        if self.masked_keys is None:
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
        return f"heads={self.heads}, head_dim={self.head_dim}, identity_start={self.identity_start}"


class Seen(NamedTuple):
    """What the visual path gives the head: the (fused) features and what the infusion attended.

    Attributes:
        features: The backbone's `forward_features` output, with the knowledge fused in.
        grid: (H, W) of the spatial tokens.
        attention: [B, heads, T, t] last-stage attention of the T spatial tokens over the t
            knowledge tokens; None without infusion.
        stage_attention: earlier stage -> its attention [B, heads, T_s, t].
    """

    features: Tensor
    grid: tuple[int, int]
    attention: Tensor | None
    stage_attention: dict[int, Tensor]


@register_part("infusion")
class Infusion(Part, nn.Module):
    """The infusion blocks of a model: the last stage's (`last`) and earlier stages' (`stages`)."""

    slot = "infusion"
    #: Built right after the graph encoder, continuing its stream (`kgnet.models.factory`).
    stream = "knowledge"
    sections = ("infusion",)
    #: It attends over the graph encoder's node embeddings.
    needs_graph_encoder = True

    def __init__(self, *, backbone: Backbone, node_dim: int, attn_dim: int = 64, heads: int = 4,
                 dropout: float = 0.1, early_stages: Sequence[int] = (), identity_start: bool = False) -> None:
        """Args:
            backbone: The backbone whose tokens it fuses (its stages' widths; earlier stages are
                hooked).
            node_dim: d, the width of the node embeddings.
            attn_dim, heads, dropout, identity_start: Each block's (`InfusionBlock`).
            early_stages: Earlier stages (indices into timm's `feature_info`, negative from the
                end) that also get a block.
        """
        super().__init__()
        block = dict(node_dim=node_dim, attn_dim=attn_dim, heads=heads, dropout=dropout, identity_start=identity_start)
        self.last = InfusionBlock(token_dim=backbone.num_features, **block)
        self.stages = nn.ModuleDict({str(stage): InfusionBlock(token_dim=width, **block)
                                     for stage, width in early_stage_widths(backbone, early_stages).items()})
        self._fusing: tuple[Backbone, Tensor] | None = None  # the backbone and knowledge tokens during `fuse`
        self._stage_attention: dict[int, Tensor] = {}
        for stage in self.stages:
            module = backbone.model.get_submodule(backbone.feature_info[int(stage)]["module"])
            module.register_forward_hook(functools.partial(self._infuse_stage, int(stage)))

    @classmethod
    def build(cls, plan: Plan) -> Infusion:
        cfg = plan.config.infusion
        if cfg.attention_dim % cfg.heads:
            raise ConfigError(f"infusion.attention_dim ({cfg.attention_dim}) must be divisible by infusion.heads "
                              f"({cfg.heads})")
        return cls(backbone=plan.backbone, node_dim=plan.config.model.embed_dim, attn_dim=cfg.attention_dim,
                   heads=cfg.heads, dropout=cfg.dropout, early_stages=cfg.early_stages,
                   identity_start=plan.head.node_start.identity_infusion)

    @property
    def blocks(self) -> list[InfusionBlock]:
        """Every block, the last stage's first (what a concept mask hides keys in)."""
        return [self.last, *self.stages.values()]

    @property
    def early_stages(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.stages)

    @staticmethod
    def _infuse(block: InfusionBlock, backbone: Backbone, features: Tensor,
                nodes: Tensor) -> tuple[Tensor, Tensor, tuple[int, int]]:
        """`features` with every token fused by `block`; the spatial tokens' attention and grid."""
        tokens, grid = backbone.to_tokens(features)
        fused, attention = block(tokens, nodes)
        prefix = backbone.num_prefix_tokens if features.ndim == 3 else 0
        return backbone.from_tokens(features, fused), attention[:, :, prefix:], grid

    def _infuse_stage(self, stage: int, module: nn.Module, args: Any, output: Tensor) -> Tensor | None:
        if self._fusing is None:  # the backbone run on its own, outside `fuse`
            return None
        backbone, tokens = self._fusing
        fused, attention, _ = self._infuse(self.stages[str(stage)], backbone, output, tokens)
        self._stage_attention[stage] = attention
        return fused

    def fuse(self, backbone: Backbone, images: Tensor, tokens: Tensor) -> Seen:
        """The backbone's features of `images` with the knowledge tokens [t, d] fused in."""
        self._fusing, self._stage_attention = (backbone, tokens), {}
        try:
            features = backbone.forward_features(images)
        finally:
            self._fusing, stage_attention = None, self._stage_attention
            self._stage_attention = {}
        features, attention, grid = self._infuse(self.last, backbone, features, tokens)
        return Seen(features, grid, attention, stage_attention)


class NoInfusion(Part, nn.Module):
    """What a model without infusion has in its place: the backbone's own features."""

    slot = "infusion"
    stream = "knowledge"
    blocks: list[InfusionBlock] = []
    early_stages: tuple[int, ...] = ()

    @classmethod
    def build(cls, plan: Plan) -> NoInfusion:
        return cls()

    def fuse(self, backbone: Backbone, images: Tensor, tokens: Tensor | None) -> Seen:
        features = backbone.forward_features(images)
        return Seen(features, backbone.to_tokens(features)[1], None, {})


def early_stage_widths(backbone: Backbone, stages: Sequence[int]) -> dict[int, int]:
    """Earlier stage index (normalised to >= 0) -> token width, checked against the backbone."""
    info = backbone.feature_info
    widths: dict[int, int] = {}
    for stage in stages:
        index = stage + len(info) if stage < 0 else stage
        if not 0 <= index < len(info) - 1:
            raise ConfigError(
                f"infusion.early_stages: {stage} is not an earlier stage of {backbone.name}, whose stages are "
                f"0..{len(info) - 1} ({', '.join(i['module'] for i in info)}); the last one always has an infusion "
                "block")
        widths[index] = int(info[index]["num_chs"])
    return widths


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
