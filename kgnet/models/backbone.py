"""Any timm model as the image side of kgnet: visual tokens for infusion, its own pooling for the head.

kgnet never special-cases an architecture: it builds the model with
`timm.create_model(name, num_classes=0, ...)` and reads only timm's common interface
(`forward_features`, `forward_head(pre_logits=True)`, `num_features`, `head_hidden_size`,
`num_prefix_tokens`, `patch_embed.grid_size`, `feature_info`, `pretrained_cfg["first_conv"]`).
`forward_features` gives the feature map or token sequence whose tokens knowledge is fused
into; `pool` is the model's own `forward_head(pre_logits=True)`, so whatever the architecture
does between its features and its classifier (a ResNet's average pool, ConvNeXt's pool and
head norm, a ViT's class-token pooling and fc_norm) is kept. What a model accepts is read from
its constructor's signature, so a keyword reaches only models that declare it.

The small-input option, for 28-32 px images (Fashion-MNIST, CIFAR), is the one documented
exception to "take timm's defaults". An ImageNet model reduces 28 px to a 1x1 map (one token,
nothing to attend from); kgnet makes it keep a few tokens as cheaply as the model allows:

- a model whose constructor takes `output_stride` (ResNets, EfficientNets, RegNets, ...) gets
  `output_stride=4` (or `model.output_stride`): timm's smallest, 8 (the last two stages dilated
  instead of strided), with the stem's max-pool dropped, so 28-32 px leave a 7x7 or 8x8 map,
  fine enough for a map to locate a part of the object (issue 22); 16 gives 2x2 and 8 gives
  4x4. Measured on the default run (resnet10t, 28 px; `benchmarks/token_grid.py`): the
  training step costs about twice that of output stride 16 for the baseline and kgnet alike,
  and top-1 is unchanged within seed noise. Models without a stem max-pool take 8 or more.
  Earlier, on resnet18, batch 128, 2 CPU threads (`benchmarks/model_cost.py --stems`),
  relative to the ImageNet stem's training step: output_stride 16 ~1.7-1.8x (2x2 map),
  dropping the max-pool ~2.6-3x (also 2x2), output_stride 8 ~3-3.2x (4x4); a CIFAR stem (3x3
  stride 1, no max-pool) is ~16x;
- a patch-embedding model (ViT, DeiT, ...) gets `img_size` and a `patch_size` of about a
  seventh of the image (28 px -> 4 px patches -> 7x7 = 49 tokens), or `model.patch_size`;
- any other CNN gets the stride of its first convolution (`pretrained_cfg["first_conv"]`)
  set to 1, which halves the total stride.
"""

from __future__ import annotations

import difflib
import inspect
import logging
import math
from pathlib import Path
from typing import Any

import timm
import torch
from torch import Tensor, nn

from kgnet.errors import ConfigError

log = logging.getLogger(__name__)

#: Output stride a small-input CNN with a stem max-pool gets unless `model.output_stride` says
#: otherwise (one without gets timm's smallest, 8).
SMALL_INPUT_OUTPUT_STRIDE = 4
#: The smallest output stride timm's CNNs take; below it kgnet drops the stem max-pool (4 = 8 without it).
TIMM_MIN_OUTPUT_STRIDE = 8
#: A small-input ViT's patch grid is about this many patches across.
SMALL_INPUT_PATCH_GRID = 7


def _probe(name: str) -> nn.Module:
    """An instance of timm model `name` with default arguments, to read its interface from."""
    if not timm.is_model(name) and not name.startswith(("hf-hub:", "hf_hub:", "local-dir:")):
        close = difflib.get_close_matches(name, timm.list_models(), n=3)
        hint = f"did you mean {', '.join(map(repr, close))}?" if close else "see timm.list_models()"
        raise ConfigError(f"model.backbone: unknown timm model {name!r} ({hint})")
    try:  # the meta device allocates nothing, so probing even a huge model is instant
        with torch.device("meta"):
            return timm.create_model(name, pretrained=False, num_classes=0)
    except Exception:  # a constructor that needs real values (e.g. `.item()`)
        return timm.create_model(name, pretrained=False, num_classes=0)


def timm_kwargs(
    name: str,
    *,
    in_chans: int,
    img_size: int | None,
    small_input: bool,
    output_stride: int | None = None,
    patch_size: int | None = None,
) -> tuple[dict[str, Any], str | None]:
    """The keywords `timm.create_model(name, ...)` gets for these inputs (see the module doc).

    Args:
        name: timm model name.
        in_chans: Image channels (1 for grayscale).
        img_size: Image side length, passed to models that take `img_size`; None = theirs.
        small_input: Apply the small-input option.
        output_stride: Output stride for models that take one; None = 4 with `small_input`,
            else the model's default.
        patch_size: Patch size for patch-embedding models; None = about img_size / 7 with
            `small_input`, else the model's default.

    Returns:
        The keywords, and what must change in the stem after creation: "drop_stem_pool" (an
        output stride below timm's 8), "first_conv_stride" (set to 1: the fallback for CNNs
        that take neither keyword) or None.
    """
    probe = _probe(name)
    accepts = inspect.signature(type(probe).__init__).parameters
    kwargs: dict[str, Any] = {"in_chans": in_chans}
    patch_embed = getattr(probe, "patch_embed", None)
    if img_size is not None and "img_size" in accepts:
        kwargs["img_size"] = img_size
    if patch_size is None and small_input and patch_embed is not None and img_size is not None:
        default = max(getattr(patch_embed, "patch_size", (img_size,)))
        patch_size = min(default, max(1, img_size // SMALL_INPUT_PATCH_GRID))
    if patch_size is not None and "patch_size" in accepts:
        side = img_size if img_size is not None else max(getattr(patch_embed, "img_size", None) or (patch_size,))
        if patch_size > side:
            raise ConfigError(f"model.patch_size: {patch_size} px patches do not fit {side} px images; use at most "
                              f"{side} (null = about a seventh of the image with model.small_input)")
        kwargs["patch_size"] = patch_size
    stem_pool = isinstance(getattr(probe, "maxpool", None), nn.MaxPool2d)
    if output_stride is None and small_input and patch_embed is None:
        output_stride = SMALL_INPUT_OUTPUT_STRIDE if stem_pool else TIMM_MIN_OUTPUT_STRIDE
    drop_stem_pool = output_stride is not None and output_stride < TIMM_MIN_OUTPUT_STRIDE and "output_stride" in accepts
    if drop_stem_pool and not stem_pool:
        raise ConfigError(f"model.output_stride: {output_stride} needs a stem max-pool to drop and {name} has none; "
                          f"use {TIMM_MIN_OUTPUT_STRIDE} or more")
    if output_stride is not None and "output_stride" in accepts:
        kwargs["output_stride"] = max(output_stride, TIMM_MIN_OUTPUT_STRIDE)
    if patch_embed is not None and "img_size" in accepts and small_input and img_size is None:
        raise ConfigError(f"model.small_input: {name} needs the image size (data.image_size) "
                          "to build its patch grid for small images")
    if drop_stem_pool:
        return kwargs, "drop_stem_pool"
    reduce_stem = small_input and patch_embed is None and "output_stride" not in accepts
    return kwargs, "first_conv_stride" if reduce_stem else None


def _weights_file(path: str) -> str:
    """`path` checked to be a readable file (timm would otherwise try the hub)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"model.pretrained_file {path}: no such file; give a local file of the backbone's "
                          "weights (.safetensors, .pth, .bin)")
    return str(file)


class Backbone(nn.Module):
    """A timm model as kgnet reads it: features, their tokens, and the model's own pooling.

    Attributes:
        model: the timm model, created with `num_classes=0`.
        num_features: C, the width of the feature tokens.
        pooled_features: D, the width of `pool`'s output (timm's `head_hidden_size`, which
            differs from C where the head has its own layers, e.g. MobileNetV3's conv_head).
        num_prefix_tokens: class/register tokens a ViT puts before its patch tokens.
        output_fmt: layout of 4-D feature maps, "NCHW" or (Swin) "NHWC".
    """

    def __init__(
        self,
        *,
        name: str,
        pretrained: bool = False,
        pretrained_file: str | None = None,
        in_chans: int = 3,
        img_size: int | None = None,
        small_input: bool = False,
        output_stride: int | None = None,
        patch_size: int | None = None,
    ) -> None:
        """Create the timm model.

        Args:
            name: Any timm model name, e.g. "resnet18", "vit_tiny_patch16_224".
            pretrained: Load timm's pretrained weights (from timm's cache, else downloaded).
            pretrained_file: Load the pretrained weights from this local file instead (timm's
                `pretrained_cfg_overlay=dict(file=...)`: nothing is fetched).
            in_chans: Image channels; timm adapts pretrained first-layer weights.
            img_size: Image side length (needed by ViTs with `small_input`).
            small_input: Keep several tokens for 28-32 px images (see the module doc).
            output_stride: Override the small-input output stride of CNNs that take one.
            patch_size: Override the small-input patch size of patch-embedding models.
        """
        super().__init__()
        self.name = name
        kwargs, stem_change = timm_kwargs(
            name, in_chans=in_chans, img_size=img_size, small_input=small_input,
            output_stride=output_stride, patch_size=patch_size)
        weights = {}
        if pretrained_file is not None:
            pretrained, weights = True, {"pretrained_cfg_overlay": {"file": _weights_file(pretrained_file)}}
        try:
            self.model = timm.create_model(name, pretrained=pretrained, num_classes=0, **kwargs, **weights)
        except (AssertionError, ValueError) as err:  # e.g. an output_stride the model lacks
            raise ConfigError(f"model.backbone: timm cannot build {name} with {kwargs}: {err}") from None
        except (OSError, RuntimeError, KeyError) as err:  # hub: OSError; no weights, wrong keys: RuntimeError
            if pretrained_file is not None:
                raise ConfigError(
                    f"model.pretrained_file {pretrained_file}: not weights timm can load into {name} "
                    f"({type(err).__name__}: {' '.join(str(err).split())[:160]}); give a file of {name}'s "
                    "weights (.safetensors, .pth, .bin)") from None
            if not pretrained:
                raise
            raise ConfigError(
                f"model.pretrained=true: timm could not get the pretrained weights of {name} "
                f"({type(err).__name__}: {' '.join(str(err).split())[:160]}); on a machine without internet put "
                "them in timm's cache (`timm.create_model(name, pretrained=True)` once while online, or "
                "HF_HUB_CACHE pointing at a copy), or set model.pretrained=false") from None
        if stem_change == "drop_stem_pool":
            self.model.maxpool = nn.Identity()
        elif stem_change == "first_conv_stride":
            self._reduce_stem_stride()
        self.num_features = int(self.model.num_features)
        self.pooled_features = int(getattr(self.model, "head_hidden_size", None) or self.num_features)
        self.num_prefix_tokens = int(getattr(self.model, "num_prefix_tokens", 0) or 0)
        self.output_fmt = str(getattr(self.model, "output_fmt", "NCHW"))
        self.timm_kwargs = kwargs
        self.in_chans, self.img_size = in_chans, img_size

    def _reduce_stem_stride(self) -> None:
        first = self.model.pretrained_cfg.get("first_conv")
        conv = self.model.get_submodule(first) if first else None
        if isinstance(conv, nn.Conv2d) and max(conv.stride) > 1:
            conv.stride = (1, 1)
        else:
            log.warning("small_input has no effect on %s: it takes no output_stride and its first "
                        "layer %r is not a strided convolution", self.name, first)

    @property
    def feature_info(self) -> list[dict[str, Any]]:
        """timm's list of stages: `module` name, `num_chs` and `reduction` of each."""
        return list(getattr(self.model, "feature_info", []))

    @property
    def pools_prefix_tokens(self) -> bool:
        """Whether the head reads only the prefix tokens (a ViT with timm's `global_pool="token"`)."""
        return self.num_prefix_tokens > 0 and getattr(self.model, "global_pool", None) == "token"

    def forward_features(self, images: Tensor) -> Tensor:
        """timm's `forward_features`: a feature map [B, C, H, W] (or NHWC) or tokens [B, P + T, C]."""
        return self.model.forward_features(images)

    def pool(self, features: Tensor) -> Tensor:
        """[B, D] the model's own pooling and head norm (`forward_head(pre_logits=True)`)."""
        return self.model.forward_head(features, pre_logits=True)

    def pooling_only_parameters(self) -> list[str] | None:
        """Names of the timm model's trainable parameters that `forward_features` does not use:
        those of its pooling alone (ConvNeXt's head norm, MobileNetV3's conv_head; none for a
        ResNet or a class-token ViT). A head that reads the tokens leaves them without
        gradients, so DDP must look for unused parameters. Found by one forward and backward on
        the meta device (no memory, no arithmetic); None when the model cannot run there."""
        params = {n: p for n, p in self.model.named_parameters() if p.requires_grad}
        meta = {f"model.{n}": p.detach().to("meta").requires_grad_() for n, p in params.items()}
        meta |= {f"model.{n}": b.to("meta") for n, b in self.model.named_buffers()}
        size = self.img_size or self.model.pretrained_cfg.get("input_size", (0, 224, 224))[-1]
        images = torch.zeros(2, self.in_chans, size, size, device="meta")
        try:
            with torch.enable_grad():
                features = torch.func.functional_call(self, meta, (images,), strict=False)
                grads = torch.autograd.grad(features.float().sum(), [meta[f"model.{n}"] for n in params],
                                            allow_unused=True)
        except Exception:  # noqa: BLE001  (an op without a meta kernel: the caller assumes the worst)
            return None
        return [n for n, g in zip(params, grads) if g is None]

    def to_tokens(self, features: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """All tokens [B, P + T, C] of a feature map or token sequence (prefix tokens first), and
        the (H, W) grid of the T spatial ones. A 4-D map is flattened row by row."""
        if features.ndim == 4:
            if self.output_fmt == "NHWC":
                _, h, w, _ = features.shape
                return features.flatten(1, 2), (h, w)
            _, _, h, w = features.shape
            return features.flatten(2).transpose(1, 2), (h, w)
        return features, self._grid(features.shape[1] - self.num_prefix_tokens)

    def from_tokens(self, features: Tensor, tokens: Tensor) -> Tensor:
        """`features` (as `to_tokens` read them) with its tokens replaced by `tokens`."""
        if features.ndim == 4:
            if self.output_fmt == "NHWC":
                return tokens.reshape(features.shape)
            b, c, h, w = features.shape
            return tokens.transpose(1, 2).reshape(b, c, h, w)
        return tokens

    def split_tokens(self, features: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """The spatial tokens [B, T, C] alone (prefix tokens dropped) and their (H, W) grid."""
        tokens, grid = self.to_tokens(features)
        return tokens[:, self.num_prefix_tokens:] if features.ndim == 3 else tokens, grid

    def _grid(self, num_tokens: int) -> tuple[int, int]:
        grid = getattr(getattr(self.model, "patch_embed", None), "grid_size", None)
        if grid is not None and math.prod(grid) == num_tokens:
            return int(grid[0]), int(grid[1])
        side = math.isqrt(num_tokens)
        return (side, side) if side * side == num_tokens else (num_tokens, 1)

    def forward(self, images: Tensor) -> Tensor:
        """The same as `forward_features`."""
        return self.forward_features(images)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, num_features={self.num_features}, kwargs={self.timm_kwargs}"
