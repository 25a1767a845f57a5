"""The energy-based pointing game on hand-built maps: the share of a map's positive energy on
the object, NaN for a map with none, and the paired difference with its t interval."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kgnet.explain.pointing import energy_on_object, object_masks, paired_difference


def test_energy_share_counts_positive_energy_on_the_object_pixels() -> None:
    pixels = np.full((3, 4, 4), 1e-8)  # a black background after normalising and back
    pixels[:, :2, :] = 0.5  # the object: the top half
    masks = object_masks(pixels)
    assert masks.sum() == 3 * 8
    on = np.zeros((3, 4, 4))
    on[0, 0, 0] = 1.0  # all on the object
    on[1, 0, 0], on[1, 3, 3] = 1.0, 3.0  # a quarter on it
    on[1, 2, 2] = -5.0  # negative evidence is not energy
    on[2] = -1.0  # no positive energy: points nowhere
    share = energy_on_object(on, masks)
    assert share[0] == 1.0 and share[1] == pytest.approx(0.25) and math.isnan(share[2])


def test_paired_difference_has_a_t_interval_over_images_both_define() -> None:
    a = np.array([0.9, 0.8, 0.7, np.nan])
    b = np.array([0.5, 0.5, 0.5, 0.1])
    d = paired_difference(a, b)  # diffs 0.4, 0.3, 0.2: mean 0.3, sd 0.1, t(0.975, 2) = 4.3027
    half = 4.302652729911275 * 0.1 / math.sqrt(3)
    assert d["images"] == 3 and d["mean"] == pytest.approx(0.3)
    assert (d["ci_low"], d["ci_high"]) == (pytest.approx(0.3 - half), pytest.approx(0.3 + half))
    one = paired_difference(np.array([0.5, np.nan]), np.array([0.1, 0.2]))
    assert one == {"mean": pytest.approx(0.4), "ci_low": None, "ci_high": None, "images": 1}
    assert paired_difference(np.array([np.nan]), np.array([0.1]))["mean"] is None
