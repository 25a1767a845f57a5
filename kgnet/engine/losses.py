"""The alignment loss of stage 1 (and the auxiliary term of stage 2).

InfoNCE over classes: each image embedding should be closer (cosine, divided by a
temperature) to the embedding of its own class node than to every other class node. With the
class nodes as the "keys" this is a cross-entropy over cosine similarities, the same form as
CLIP's image-to-text loss with one text per class.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def class_alignment_loss(
    image_embeddings: Tensor,
    class_embeddings: Tensor,
    targets: Tensor,
    *,
    temperature: float = 0.1,
    allowed_classes: Tensor | None = None,
) -> Tensor:
    """InfoNCE between image embeddings [B, D] and class node embeddings [K, D].

    Args:
        image_embeddings: one embedding per image.
        class_embeddings: one embedding per class node, in label order.
        targets: [B] label of each image.
        temperature: softmax temperature on cosine similarities.
        allowed_classes: optional [K] bool mask; classes outside it (held out for zero-shot)
            are not offered as negatives, so training never sees them.

    Returns:
        The mean loss over the batch (a scalar).
    """
    similarity = F.normalize(image_embeddings, dim=-1) @ F.normalize(class_embeddings, dim=-1).T
    logits = similarity / temperature
    if allowed_classes is not None:
        logits = logits.masked_fill(~allowed_classes.to(logits.device), torch.finfo(logits.dtype).min)
    return F.cross_entropy(logits, targets)
