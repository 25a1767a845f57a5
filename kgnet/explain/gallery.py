"""`index.html`: the explanations of a run as one self-contained page.

Opens from the file system in any browser: inline CSS, no scripts, no external resources,
figure paths relative to the page, every name from the data or the ontology HTML-escaped.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from kgnet.atomic import write_text_atomic

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; background: #fafafa; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.5rem 0; background: white; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.7rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.note { color: #555; font-size: 0.9rem; max-width: 60rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 60rem), 1fr)); gap: 1rem; }
.card { background: white; border: 1px solid #ddd; border-radius: 6px; padding: 0.8rem; }
.card img { width: 100%; height: auto; display: block; }
.card dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.2rem 0.8rem; margin: 0.5rem 0 0; }
.card dt { font-weight: 600; } .card dd { margin: 0; }
.wrong { color: #b00020; }
"""


@dataclass
class Card:
    """One image of the gallery."""

    title: str
    figure: str  # path relative to index.html
    true_label: str | None
    predictions: dict[str, tuple[str, float]]  # variant -> (class, probability)
    concepts: list[tuple[str, str]] = field(default_factory=list)  # (name, its number as shown)
    concepts_title: str = "top concepts"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _faithfulness_section(faithfulness: dict[str, Any] | None, curves: str | None) -> str:
    if not faithfulness:
        return "<h2>Faithfulness</h2><p class=note>Not computed (run with <code>--faithfulness N</code>).</p>"
    settings = faithfulness["settings"]
    rows = []
    maps = [("Grad-CAM", faithfulness["gradcam"]), ("exact class map", faithfulness.get("class_map", {}))]
    for what, by_variant in maps:
        for variant, scores in by_variant.items():
            zero = f"<td>{100 * scores.get('zero_maps', 0.0):.0f}%</td>"
            if scores.get("deletion") is None:  # every map zero: no number, the reason instead
                rows.append(f"<tr><td>{_e(variant)}</td><td>{what}</td><td colspan=2>not available: "
                            f"{_e(scores.get('not_available', 'no map'))}</td>{zero}</tr>")
                continue
            scored = scores.get("images_scored", settings["images"])
            rows.append(f"<tr><td>{_e(variant)}</td><td>{what}</td>"
                        f"<td>{scores['deletion']['mean']:.3f} &plusmn; {scores['deletion']['std']:.3f}</td>"
                        f"<td>{scores['insertion']['mean']:.3f} &plusmn; {scores['insertion']['std']:.3f}"
                        + (f" (the {scored} images with a non-zero map)" if scored < settings["images"] else "")
                        + f"</td>{zero}</tr>")
    parts = [
        "<h2>Faithfulness</h2>",
        f"<p class=note>Grad-CAM deletion and insertion AUC (RISE) over {settings['images']} test images: "
        f"pixels removed or revealed in saliency order in {settings['steps']} steps, removed pixels set to "
        f"{_e(settings['fill_description'])}; area under the probability of the predicted class. "
        "Deletion: lower is better; insertion: higher is better. Mean &plusmn; std over images. A map that is "
        "zero everywhere (last column) orders pixels at random: those images are left out, and where every map "
        "is zero there is no number. A concept head's exact class map places each concept's contribution on "
        "the region that found it, so its regions add up to the class's score.</p>",
        "<table><tr><th>variant</th><th>map</th><th>deletion AUC &darr;</th><th>insertion AUC &uarr;</th>"
        "<th>all-zero maps</th></tr>",
        *rows, "</table>",
    ]
    parts += _pointing_rows(faithfulness)
    if curves:
        parts.append(f'<p><img src="{_e(curves)}" alt="mean deletion and insertion curves" '
                     'style="max-width:60rem;width:100%"></p>')
    concepts = faithfulness.get("concepts")
    if concepts and concepts.get("head") == "concept":
        parts += _concept_removal_rows(concepts)
    elif concepts:
        parts += [
            f"<p class=note>Concept faithfulness of <b>{_e(concepts['variant'])}</b> over {concepts['images']} "
            "test images: the most-attended concept, then a random other one, is removed from the keys of the "
            "infusion attention; the drop is the fall of the predicted class's probability.</p>",
            "<table><tr><th>masked concept</th><th>mean drop</th><th>std</th></tr>",
            f"<tr><td>most attended</td><td>{concepts['top_drop_mean']:+.4f}</td><td>{concepts['top_drop_std']:.4f}</td></tr>",
            f"<tr><td>random</td><td>{concepts['random_drop_mean']:+.4f}</td><td>{concepts['random_drop_std']:.4f}</td></tr>",
            f"<tr><td>images where top &gt; random</td><td>{100 * concepts['fraction_top_greater']:.1f}%</td><td></td></tr>",
            "</table>",
        ]
    return "\n".join(parts)


def _pointing_rows(faithfulness: dict[str, Any]) -> list[str]:
    """The energy-based pointing game (`kgnet.explain.pointing`): the share of each map on the object."""
    energy = faithfulness.get("energy_on_object") or {}
    if "not_available" in energy:
        return [f"<p class=note>Energy on the object: not available ({_e(energy['not_available'])}).</p>"]
    if not energy:
        return []
    rows = [f"<tr><td>{_e(name)}</td><td>{_e(e['map'])}</td><td>"
            + (f"{100 * e['mean']:.1f}%" if e["mean"] is not None else "not available: every map is zero")
            + f"</td><td>{e['images']}</td></tr>" for name, e in energy.items()]
    diff = faithfulness.get("energy_on_object_difference")
    if diff and diff["mean"] is not None:
        ci = (f" [{100 * diff['ci_low']:+.1f}, {100 * diff['ci_high']:+.1f}]" if diff["ci_low"] is not None
              else " (one image: no interval)")
        rows.append(f"<tr><td colspan=2>{_e(diff['of'])}, paired by image (95% t interval)</td>"
                    f"<td>{100 * diff['mean']:+.1f} points{ci}</td><td>{diff['images']}</td></tr>")
    first = next(iter(energy.values()))
    return [f"<p class=note>Where each map points: the share of its positive energy on the object's pixels (the "
            f"non-zero pixels: {100 * first['object_pixels']:.0f}% of the image on average), the energy-based "
            "pointing game of Score-CAM. Higher: the map sits on the garment, not the background.</p>",
            "<table><tr><th>variant</th><th>map</th><th>energy on the object</th><th>images</th></tr>", *rows,
            "</table>"]


def _concept_removal_rows(c: dict[str, Any]) -> list[str]:
    """The exact concept-removal checks of a concept head (`kgnet.explain.concept_removal`)."""
    return [
        f"<p class=note>Concept faithfulness of <b>{_e(c['variant'])}</b> over {c['images']} test images. "
        "Removing a concept sets its activation to zero and recomputes the class scores, which moves each "
        "class's logit by exactly that concept's contribution. Removal: the fall of the predicted class's "
        "probability when its top-contributing concept is removed, then a random other concept. Deletion: "
        "concepts removed one by one in contribution order, area under the predicted class's probability "
        "over the fraction removed (lower: the top concepts carry the prediction), against a random order. "
        f"Precision: over the {c['precision_images']} correctly classified images, the share of each one's 3 "
        "most activated ontology concepts that the ontology links to its class, against chance.</p>",
        "<table><tr><th>check</th><th>value</th><th>reference</th></tr>",
        f"<tr><td>drop, top-contributing concept removed</td><td>{c['top_drop_mean']:+.4f} &plusmn; "
        f"{c['top_drop_std']:.4f}</td><td>random concept: {c['random_drop_mean']:+.4f} &plusmn; "
        f"{c['random_drop_std']:.4f}</td></tr>",
        f"<tr><td>images where top &gt; random</td><td>{100 * c['fraction_top_greater']:.1f}%</td><td></td></tr>",
        f"<tr><td>concept deletion AUC &darr;</td><td>{c['deletion_auc']['mean']:.3f} &plusmn; "
        f"{c['deletion_auc']['std']:.3f}</td><td>random order: {c['random_deletion_auc']['mean']:.3f}</td></tr>",
        f"<tr><td>concept precision (top 3 activated)</td><td>{c['concept_precision']:.3f}</td>"
        f"<td>chance: {c['concept_precision_chance']:.3f}</td></tr>",
        "</table>",
    ]


def _card(card: Card) -> str:
    items = [f"<dt>true</dt><dd>{_e(card.true_label) if card.true_label is not None else 'unknown'}</dd>"]
    for variant, (label, probability) in card.predictions.items():
        wrong = card.true_label is not None and label != card.true_label
        items.append(f"<dt>{_e(variant)}</dt><dd{' class=wrong' if wrong else ''}>{_e(label)} "
                     f"({100 * probability:.1f}%)</dd>")
    if card.concepts:
        names = ", ".join(f"{_e(name)} ({_e(value)})" for name, value in card.concepts)
        items.append(f"<dt>{_e(card.concepts_title)}</dt><dd>{names}</dd>")
    return (f'<div class=card><h3>{_e(card.title)}</h3>'
            f'<a href="{_e(card.figure)}"><img src="{_e(card.figure)}" alt="{_e(card.title)}" loading="lazy"></a>'
            f"<dl>{''.join(items)}</dl></div>")


def write_gallery(path: str | Path, *, run: str, cards: Sequence[Card], faithfulness: dict[str, Any] | None,
                  curves: str | None = None) -> None:
    """Write index.html with the faithfulness numbers and one card per image."""
    page = "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>kgnet explanations: {_e(run)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>kgnet explanations: {_e(run)}</h1>",
        "<p class=note>Per image: the input, the Grad-CAM of the baseline and of the knowledge variant "
        "(each for its own predicted class), and the knowledge variant's top concepts with where in the image "
        "each was found. With a concept head (the default kgnet) a class's score (logit) is the sum of its "
        "concepts' contributions: a contribution is the logit points concept j adds to class k "
        "(scale &times; A<sub>kj</sub> &times; c<sub>j</sub>, where c<sub>j</sub> is the concept's activation: "
        "the best cosine of an image region with it, and A<sub>kj</sub> the weight the ontology gives it for "
        "class k). Removing the concept moves that class's score by exactly its contribution. Blue bars: the "
        "predicted class; orange: the runner-up. The heat maps show the cosine of each region with the "
        "concept, and the line under each names the ontology path linking the concept to the predicted class. "
        "For the prototype design (kgnet-prototype) the bars are attention weights, which do not add up to "
        "the score.</p>",
        _faithfulness_section(faithfulness, curves),
        f"<h2>Images ({len(cards)})</h2>",
        '<div class="cards">',
        *(_card(card) for card in cards),
        "</div></body></html>",
        "",
    ])
    write_text_atomic(path, page)
