"""index.html: the run's scores and a plain sentence first, then the images as a grid with wrong
predictions marked on the card, then the numbers; every name escaped."""

from __future__ import annotations

from pathlib import Path

from kgnet.explain.explanations import EXPLANATIONS
from kgnet.explain.gallery import Card, write_gallery

RIGHT = Card("test image 1", "figures/000-test1.png", "thumbnails/000-test1.png", "Coat",
             {"baseline": ("Coat", 0.9), "kgnet": ("Coat", 0.7)}, [("zip", "+0.38")])
WRONG = Card("test image 2", "figures/001-test2.png", "thumbnails/001-test2.png", "Shirt",
             {"baseline": ("Shirt", 0.8), "kgnet": ("Coat", 0.4)}, [("arm", "+0.39")])
FAITHFULNESS = {
    "settings": {"images": 4, "steps": 8, "fill_description": "mean"},
    "gradcam": {"baseline": {"zero_maps": 0.0, "images_scored": 4, "deletion": {"mean": 0.486, "std": 0.2},
                             "insertion": {"mean": 0.33, "std": 0.2}, "road": {"mean": -0.076, "std": 0.1,
                                                                                  "percentiles": [10, 50, 90]}},
                "kgnet": {"zero_maps": 1.0, "images_scored": 0, "deletion": None, "insertion": None, "road": None,
                          "not_available": "the map is zero everywhere on 4 of 4 images"}},
    "class_map": {"kgnet": {"zero_maps": 0.0, "images_scored": 4, "deletion": {"mean": 0.264, "std": 0.1},
                            "insertion": {"mean": 0.27, "std": 0.1},
                            "road": {"mean": 0.009, "std": 0.05, "percentiles": [10, 50, 90]}}},
}
SCORES = {"baseline": {"top1": 0.5885, "images": 10000}, "kgnet": {"top1": 0.6406, "images": 10000}}


def _page(tmp_path: Path, cards=(RIGHT, WRONG), explains: str = "contributions") -> str:
    write_gallery(tmp_path / "index.html", run="run", cards=list(cards), faithfulness=FAITHFULNESS,
                  scores=SCORES, explanation=EXPLANATIONS[explains]())
    return (tmp_path / "index.html").read_text()


def test_scores_and_meaning_come_before_the_grid_and_the_numbers_after_it(tmp_path: Path) -> None:
    page = _page(tmp_path)
    summary, grid, numbers = (page.index(f"<section id={name}>") for name in ("summary", "images", "numbers"))
    assert summary < grid < numbers
    opening = page[summary:grid]
    assert "58.9%" in opening and "64.1%" in opening and "10,000" in opening  # test top-1 per variant
    assert EXPLANATIONS["contributions"].meaning in opening
    for notation in ("A<sub>", "c<sub>", "logit points", "A_kj"):
        assert notation not in opening
    assert page.index("test image 1") > grid and page.index("deletion AUC") > numbers
    # ROAD next to deletion/insertion; a map that is zero everywhere gets the reason, not a number
    assert "ROAD" in page[numbers:] and "-0.076 &plusmn; 0.100" in page and "+0.009" in page
    # kgnet is scored by its exact class map: its vanishing Grad-CAM is named, not tabled beside it
    assert "<td>kgnet</td><td>Grad-CAM</td>" not in page and "<td>kgnet</td><td>exact class map</td>" in page
    assert "kgnet's own Grad-CAM is zero everywhere on 100% of the images" in page


def test_a_wrong_prediction_is_marked_on_its_card_only(tmp_path: Path) -> None:
    page = _page(tmp_path)
    cards = page.split("<figure ")[1:]
    right, wrong = (next(c for c in cards if title in c) for title in ("test image 1", "test image 2"))
    assert right.startswith('class="card"') and "badge" not in right
    assert wrong.startswith('class="card wrong"') and "<span class=badge>wrong: kgnet</span>" in wrong
    assert '<a href="figures/001-test2.png"><img src="thumbnails/001-test2.png"' in wrong  # the full figure: a click
    assert "wrong below" in page and "<td>1 of 2</td>" in page  # kgnet got one of the two shown wrong


def test_names_from_the_data_are_escaped(tmp_path: Path) -> None:
    odd = Card("a<b>&c.png", "figures/000-a_b_c.png", "thumbnails/000-a_b_c.png", None, {"kgnet": ("<Coat>", 0.5)},
               [("x&y", "+0.1")])
    page = _page(tmp_path, cards=[odd], explains="attention")
    assert "a&lt;b&gt;&amp;c.png" in page and "&lt;Coat&gt;" in page and "x&amp;y" in page
    assert "<Coat>" not in page and "a<b>" not in page
    assert EXPLANATIONS["attention"].meaning in page and "wrong below" not in page  # no true label: nothing to mark
