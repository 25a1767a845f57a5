"""The per-image figure of a concept head: only concepts that add to a class get a bar, every bar
carries its value, every concept shown gets a heat map with its ontology path, the runner-up's
own concepts sit on a row of their own, and a wrong prediction is marked on the figure and on
the gallery's thumbnail."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.text import Text

from kgnet.explain.contributions import ConceptContribution
from kgnet.figures.explanation import WRONG_COLOUR, ClassScores, Prediction, explanation_figure, thumbnail_figure

SCORES = ClassScores("Coat", 1.1, "Shirt", 0.9)
CONCEPTS = [
    ConceptContribution(0, "arm", 0.5, 0.40, 0.45, "coat -wornOn-> arm"),  # shared: both bars
    ConceptContribution(1, "zip", 0.6, 0.30, 0.0, "coat -hasPart-> zip"),  # the predicted class's alone
    ConceptContribution(2, "cuff", 0.4, 0.0, 0.25, "shirt -hasPart-> cuff", for_runner_up=True),
]


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """The figures `explanation_figure` saves."""
    figures, save = [], Figure.savefig

    def keep(self, *args, **kwargs):
        figures.append(self)
        return save(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    return figures


def _texts(fig: Figure) -> list[Text]:
    return [t for t in fig.findobj(Text) if t.get_text()]


def _draw(path: Path, true_label: str, concepts=CONCEPTS, baseline: str = "Shirt") -> None:
    image = np.linspace(0, 1, 28 * 28).reshape(28, 28)
    cam = np.ones((28, 28)) * 0.5
    explanation_figure(path, image=image, title="test image 1", true_label=true_label,
                       predictions=[Prediction("baseline", baseline, 0.9, cam),
                                    Prediction("kgnet", "Coat", 0.6, cam, "exact class map")],
                       concepts=concepts, maps=np.random.default_rng(0).random((len(concepts), 28, 28)),
                       scores=SCORES)


def test_contribution_bars_are_nonzero_and_labelled_and_each_concept_has_its_map(tmp_path: Path, drawn) -> None:
    _draw(tmp_path / "f.png", "Shirt")
    fig = drawn[0]
    texts = [t.get_text() for t in _texts(fig)]
    chart = next(ax for ax in fig.subfigs[0].axes if ax.get_title().endswith("concept contributions"))
    bars = [p for p in chart.patches if p.get_width() != 0]
    assert len(chart.patches) == len(bars) == 4  # arm x2, zip, cuff: no zero-length bar
    labels = sorted(t.get_text().strip() for t in chart.texts)
    assert labels == ["+0.25", "+0.30", "+0.40", "+0.45"]  # every bar, blue and orange, carries its value
    assert not any("+0.00" in t for t in texts)
    # one heat map per concept, the runner-up's on a second row, each with its path underneath
    maps = [ax for ax in fig.subfigs[1].axes if ax.images]
    assert [ax.get_xlabel() for ax in maps] == [c.path for c in CONCEPTS]
    assert "+0.25 to Shirt (runner-up)" in maps[2].get_title()
    assert maps[2].get_position().y0 < maps[0].get_position().y0  # a row below
    # the wrong prediction (kgnet said Coat, the image is a Shirt) is marked, the right one not
    wrong = [t for t in _texts(fig) if "WRONG" in t.get_text()]
    assert len(wrong) == 1 and "kgnet" in wrong[0].get_text() and wrong[0].get_color() == WRONG_COLOUR
    # the exact class map says on the figure why it stands where a Grad-CAM would
    assert "in place of Grad-CAM" in wrong[0].get_text().replace("\n", " ")


def test_a_right_prediction_is_not_marked_and_no_runner_up_row_without_its_concepts(tmp_path: Path, drawn) -> None:
    _draw(tmp_path / "f.png", "Coat", CONCEPTS[:2], baseline="Coat")
    fig = drawn[0]
    assert not any("WRONG" in t.get_text() for t in _texts(fig))
    rows = {round(ax.get_position().y0, 3) for ax in fig.subfigs[1].axes if ax.images}
    assert len(rows) == 1


def test_the_thumbnail_frames_a_wrong_prediction_in_red(tmp_path: Path, drawn) -> None:
    image, cam = np.zeros((28, 28)), np.ones((28, 28)) * 0.5
    thumbnail_figure(tmp_path / "t.png", image=image, true_label="Shirt",
                     predictions=[Prediction("baseline", "Shirt", 0.9, cam), Prediction("kgnet", "Coat", 0.6, cam)])
    _, right, wrong = drawn[0].axes
    assert "WRONG" in wrong.get_title() and "WRONG" not in right.get_title()
    assert all(spine.get_edgecolor() == to_rgba(WRONG_COLOUR) for spine in wrong.spines.values())
    assert not any(spine.get_edgecolor() == to_rgba(WRONG_COLOUR) for spine in right.spines.values())
