"""The heads: each turns the (fused) visual features into class logits, and says what it needs.

Every head is a `Head` registered in `kgnet.models.registry.PARTS` by its module in this
package (each module here is imported below, so a new head is one file). Callers ask the head
instead of testing which head it is:

- `read(backbone, features)`: what it reads of the backbone's features (the pooled feature, the
  tokens);
- `forward(inputs, nodes)`: a `HeadOutput` (`nodes`: the graph encoder's node embeddings, or
  None in a model without one);
- `align_epochs` and `loss(...)`: how it trains (an alignment stage first, an auxiliary term);
- `leaves_idle(backbone)`: whether a step leaves a parameter without a gradient (DDP);
- `explains`: how an explanation reads it (a key of `kgnet.explain.explanations.EXPLANATIONS`);
- `node_start`: how the node embeddings it reads should start (`NodeStart`), which the graph
  encoder and the infusion it is composed with initialise themselves to.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import torch
from torch import Tensor, nn

from kgnet.models.backbone import Backbone
from kgnet.models.registry import Part


class HeadOutput(NamedTuple):
    """What a head returns (a NamedTuple, so DDP and torch.compile see its tensors).

    Attributes:
        logits: [B, K].
        embedding: [B, d] the image embedding z (the concept activations for the concept head).
        concepts: [B, M] the concept head's concept activations; None for the others.
        class_embeddings: [K, d] the class nodes' embeddings the alignment pulls z towards
            (a head with an alignment stage); None for the others.
    """

    logits: Tensor
    embedding: Tensor
    concepts: Tensor | None = None
    class_embeddings: Tensor | None = None


@dataclass(frozen=True)
class NodeStart:
    """How the node embeddings a head reads should start (chosen on validation, issue 20).

    Attributes:
        spread: Starting standard deviation of the graph encoder's learned node inputs (1 gives
            them the text's norm, so nodes start near-orthogonal, as free vectors would).
        centre_text: Centre the node texts' vectors and project them without a bias, so node
            embeddings do not start alike (sentence embeddings share a direction).
        identity_infusion: The infusion starts as the identity (both residual branches zero).
    """

    spread: float = 0.02
    centre_text: bool = False
    identity_infusion: bool = False


class LogitScale(nn.Module):
    r"""A learned logit scale :math:`s = \min(e^{\log s}, s_{\max})`: learned in log space and capped
    (as in CLIP) so cosine logits cannot blow up."""

    def __init__(self, *, init_scale: float = 10.0, max_scale: float = 100.0) -> None:
        super().__init__()
        self.init_scale, self.max_scale = init_scale, max_scale
        self.log_scale = nn.Parameter(torch.empty(()))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.constant_(self.log_scale, math.log(self.init_scale))

    def forward(self) -> Tensor:
        return self.log_scale.exp().clamp(max=self.max_scale)

    def extra_repr(self) -> str:
        return f"init_scale={self.init_scale}, max_scale={self.max_scale}"


class Head(Part, nn.Module):
    """The contract every registered head keeps (see the module doc and `kgnet.models.registry`);
    subclasses build themselves with `build(plan)` and implement `read` and `forward`."""

    slot: ClassVar[str] = "head"
    #: The random stream its weights are drawn from (`kgnet.models.factory`).
    stream: ClassVar[str] = "head"
    #: How an explanation reads it: a key of `kgnet.explain.explanations.EXPLANATIONS`.
    explains: ClassVar[str] = "gradcam"
    #: How the node embeddings it reads should start.
    node_start: ClassVar[NodeStart] = NodeStart()
    #: The first epochs that train an alignment alone (0: none).
    align_epochs: int = 0

    def read(self, backbone: Backbone, features: Tensor) -> Tensor:
        """What the head reads of `features` (the backbone's `forward_features`, fused): pooled."""
        return backbone.pool(features)

    def loss(self, out: HeadOutput, cross_entropy: Tensor, targets: Tensor, *, seen: Tensor,
             epoch: int) -> tuple[Tensor, Tensor]:
        """The step's loss and its auxiliary term: cross-entropy alone (the term is 0)."""
        return cross_entropy, cross_entropy.new_zeros(())

    def leaves_idle(self, backbone: Backbone) -> bool:
        """Whether a training step leaves some parameter without a gradient (DDP then looks for
        unused parameters): none for a head that reads the backbone's own pooling."""
        return False


def _import_heads() -> None:
    """Import every module of this package, so each registers its head."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


_import_heads()
