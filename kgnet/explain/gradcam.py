"""Grad-CAM of a kgnet model with pytorch-grad-cam, for CNN and ViT backbones alike.

The target layer is the backbone's last feature stage whose spatial tokens still reach the
head (timm's `feature_info`), the same layer for the baseline and the knowledge variant, so
their maps compare like with like: `layer4` of a ResNet, the last stage of a ConvNeXt. A ViT
whose head reads only its class token (timm's `global_pool="token"`) is the exception: after
its last block nothing mixes the patch tokens into the class token any more, so their
gradient there is zero; its target is the block before, whose output the last block's
attention reads (pytorch-grad-cam's advice for ViTs, `blocks[-1].norm1`, is the same place).

Grad-CAM needs a [B, C, H, W] activation. A CNN stage gives one; a ViT block gives a token
sequence, which `reshape_transform` turns into a map with the model's own
`Backbone.split_tokens`: drop the `num_prefix_tokens` (class/register tokens), and lay the rest
on the patch grid the model reports (`patch_embed.grid_size`), so nothing about the grid is
hard-coded. NHWC stages (Swin) are permuted the same way.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import Tensor, nn

from kgnet.models.backbone import Backbone
from kgnet.models.kgnet_model import KgnetModel


class LogitsOnly(nn.Module):
    """`model(images).logits`: pytorch-grad-cam (and its metrics) want a plain tensor output."""

    def __init__(self, model: KgnetModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: Tensor) -> Tensor:
        return self.model(images).logits


def target_layer(model: KgnetModel) -> nn.Module:
    """Grad-CAM's target layer: the last feature stage whose spatial tokens reach the head."""
    backbone = model.backbone
    info = backbone.feature_info
    if not info:
        raise RuntimeError(f"{backbone.name} lists no feature stages (timm feature_info); "
                           "cannot pick a Grad-CAM layer")
    stage = info[-2] if backbone.pools_prefix_tokens and len(info) > 1 else info[-1]
    return backbone.model.get_submodule(stage["module"])


def reshape_transform(backbone: Backbone) -> Callable[[Tensor], Tensor]:
    """Activations of the target layer as [B, C, H, W] maps (see the module doc)."""

    def to_map(activation: Tensor) -> Tensor:
        if activation.ndim == 4 and backbone.output_fmt != "NHWC":
            return activation
        tokens, (h, w) = backbone.split_tokens(activation)
        return tokens.transpose(1, 2).reshape(activation.shape[0], tokens.shape[2], h, w)

    return to_map


def gradcam(model: KgnetModel, images: Tensor, classes: Sequence[int], batch_size: int = 64) -> np.ndarray:
    """Grad-CAM maps [B, H, W] in [0, 1] (per image min-max, as pytorch-grad-cam scales them).

    Args:
        model: A kgnet model (baseline or knowledge variant), in eval mode.
        images: Normalised images [B, C, H, W] on the model's device.
        classes: The class to explain for each image (usually the model's prediction).
        batch_size: Images per forward/backward pass.
    """
    wrapper = LogitsOnly(model)
    cam = GradCAM(model=wrapper, target_layers=[target_layer(model)],
                  reshape_transform=reshape_transform(model.backbone))
    maps = []
    try:  # not `with`: GradCAM.__exit__ swallows IndexErrors
        with torch.enable_grad():
            for start in range(0, len(images), batch_size):
                chunk = images[start:start + batch_size]
                targets = [ClassifierOutputTarget(int(c)) for c in classes[start:start + batch_size]]
                maps.append(cam(input_tensor=chunk, targets=targets))
    finally:
        cam.activations_and_grads.release()
    model.zero_grad(set_to_none=True)
    return np.concatenate(maps, axis=0) if maps else np.zeros((0, *images.shape[-2:]), np.float32)
