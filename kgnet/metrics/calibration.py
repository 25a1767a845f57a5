r"""Calibration: does a model's confidence match how often it is right?

Knowledge injection changes the logits (prototype head, alignment), which can change how
over-confident a classifier is even at equal accuracy, so every run reports the expected
calibration error next to top-1.

Expected calibration error (Naeini et al., AAAI 2015; Guo et al., "On Calibration of Modern
Neural Networks", ICML 2017), with M equal-width confidence bins
:math:`B_m = \{n : \text{conf}_n \in (\tfrac{m-1}{M}, \tfrac{m}{M}]\}`:

.. math::
    \mathrm{ECE} = \sum_{m=1}^{M} \frac{|B_m|}{N}\,
        \bigl|\operatorname{acc}(B_m) - \operatorname{conf}(B_m)\bigr|,

where conf_n is the top-1 probability of image n, acc(B_m) the fraction of the bin's images
whose top-1 class is right and conf(B_m) the bin's mean confidence. kgnet uses M = 15, the
number Guo et al. used.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

#: Bins of the reported `ece` (Guo et al. 2017).
ECE_BINS = 15


@dataclass
class CalibrationBins:
    """Per-bin counts, mean confidences and accuracies (a reliability diagram's data).

    Attributes:
        edges: [M + 1] bin edges, 0 to 1.
        counts: [M] images per bin.
        confidence: [M] mean top-1 probability per bin (0 where the bin is empty).
        accuracy: [M] fraction right per bin (0 where the bin is empty).
    """

    edges: Tensor
    counts: Tensor
    confidence: Tensor
    accuracy: Tensor

    @property
    def ece(self) -> float:
        """The count-weighted mean gap |accuracy - confidence| over the bins."""
        total = int(self.counts.sum())
        if total == 0:
            return float("nan")
        return float((self.counts / total * (self.accuracy - self.confidence).abs()).sum())


def calibration_bins(confidences: Tensor, correct: Tensor, n_bins: int = ECE_BINS) -> CalibrationBins:
    """Sort predictions into `n_bins` equal-width confidence bins, right-closed (lo, hi].

    Args:
        confidences: [N] top-1 probabilities in [0, 1].
        correct: [N] whether each top-1 prediction is right (bool or 0/1).
        n_bins: number of bins.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    confidences = torch.as_tensor(confidences, dtype=torch.float64).flatten()
    correct = torch.as_tensor(correct).flatten().to(torch.float64)
    if confidences.shape != correct.shape:
        raise ValueError(f"{len(confidences)} confidences but {len(correct)} correctness flags")
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64)
    # bucketize(right=False) puts x into bin i when edges[i] < x <= edges[i+1]; 0 joins bin 0.
    index = torch.bucketize(confidences.clamp(0, 1), edges[1:-1], right=False)
    counts = torch.bincount(index, minlength=n_bins).to(torch.float64)
    sums_conf = torch.bincount(index, weights=confidences, minlength=n_bins)
    sums_right = torch.bincount(index, weights=correct, minlength=n_bins)
    safe = counts.clamp(min=1)
    return CalibrationBins(edges=edges, counts=counts, confidence=sums_conf / safe, accuracy=sums_right / safe)


def expected_calibration_error(probabilities: Tensor, targets: Tensor, n_bins: int = ECE_BINS) -> float:
    """ECE of top-1 predictions (see the module docstring); nan when there are no images.

    Args:
        probabilities: [N, K] class probabilities (softmax of the logits), rows summing to 1.
        targets: [N] true class indices.
        n_bins: number of equal-width confidence bins (15 by default).
    """
    probabilities = torch.as_tensor(probabilities)
    if probabilities.ndim != 2:
        raise ValueError(f"probabilities must be [N, K], got shape {tuple(probabilities.shape)}")
    if len(probabilities) == 0:
        return float("nan")
    confidences, predictions = probabilities.max(dim=1)
    correct = predictions == torch.as_tensor(targets, dtype=torch.long)
    return calibration_bins(confidences, correct, n_bins).ece
