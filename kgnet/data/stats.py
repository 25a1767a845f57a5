"""Per-data-set pixel statistics that normalise images before the backbone sees them.

Constants rather than statistics recomputed per run: every run (and every variant, rank and
resumed run) then feeds the model identical numbers, and loading needs no extra pass. The
Fashion-MNIST and CIFAR values are the training-set mean and standard deviation of the pixels
scaled to [0, 1] (the test suite recomputes the Fashion-MNIST ones from the real files);
ImageFolder data sets use the ImageNet values, which is what their photos (and any pretrained
timm backbone) expect.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PixelStats:
    """Per-channel mean and standard deviation of pixels scaled to [0, 1]."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def channels(self) -> int:
        """Number of channels."""
        return len(self.mean)


PIXEL_STATS: dict[str, PixelStats] = {
    "fashion_mnist": PixelStats((0.2860,), (0.3530,)),
    "cifar10": PixelStats((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": PixelStats((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagefolder": PixelStats((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}
