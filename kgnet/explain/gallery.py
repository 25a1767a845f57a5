"""`index.html`: the explanations of a run as one page beside its figures.

Opens from the file system in any browser: inline CSS, no scripts, no network, the figures
linked by paths relative to the page (the folder travels whole; the page does not embed them),
every name from the data or the ontology HTML-escaped.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from kgnet.atomic import write_text_atomic

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; background: #fafafa; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.5rem 0; background: white; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.7rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.lead { font-size: 1.05rem; max-width: 48rem; }
.note { color: #555; font-size: 0.9rem; max-width: 60rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(17rem, 1fr)); gap: 0.8rem; }
.card { background: white; border: 1px solid #ddd; border-radius: 6px; padding: 0.5rem; margin: 0;
        font-size: 0.85rem; }
.card.wrong { border-color: #b00020; }
.shot { position: relative; }
.card img { width: 100%; height: auto; display: block; border: 3px solid transparent; box-sizing: border-box; }
.card.wrong img { border-color: #b00020; }
.card dd.wrong { color: #b00020; font-weight: 600; }
.badge { position: absolute; bottom: 6px; left: 6px; background: #b00020; color: white; font-weight: 600;
         font-size: 0.75rem; padding: 0.1rem 0.4rem; border-radius: 3px; }
.card dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.1rem 0.6rem; margin: 0.3rem 0 0; }
.card dt { font-weight: 600; } .card dd { margin: 0; }
"""


@dataclass
class Card:
    """One image of the gallery."""

    title: str
    figure: str  # path relative to index.html
    thumbnail: str  # the small strip the grid shows (input and maps), relative to index.html
    true_label: str | None
    predictions: dict[str, tuple[str, float]]  # variant -> (class, probability)
    concepts: list[tuple[str, str]] = field(default_factory=list)  # (name, its number as shown)
    concepts_title: str = "top concepts"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _faithfulness_section(faithfulness: dict[str, Any] | None, curves: str | None,
                          concept_rows: Callable[[dict[str, Any]], list[str]]) -> str:
    if not faithfulness:
        return "<h2>Faithfulness</h2><p class=note>Not computed (run with <code>--faithfulness N</code>).</p>"
    settings = faithfulness["settings"]
    rows = []
    class_maps = faithfulness.get("class_map", {})
    # A variant with an exact class map is shown and scored by it: its Grad-CAM, zero on most images,
    # would be scored on the few where it is not, a number not comparable with the others.
    maps = [("Grad-CAM", {v: s for v, s in faithfulness["gradcam"].items() if v not in class_maps}),
            ("exact class map", class_maps)]
    for what, by_variant in maps:
        for variant, scores in by_variant.items():
            zero = f"<td>{100 * scores.get('zero_maps', 0.0):.0f}%</td>"
            if scores.get("deletion") is None:  # every map zero: no number, the reason instead
                rows.append(f"<tr><td>{_e(variant)}</td><td>{what}</td><td colspan=3>not available: "
                            f"{_e(scores.get('not_available', 'no map'))}</td>{zero}</tr>")
                continue
            scored = scores.get("images_scored", settings["images"])
            rows.append(f"<tr><td>{_e(variant)}</td><td>{what}</td>"
                        f"<td>{scores['deletion']['mean']:.3f} &plusmn; {scores['deletion']['std']:.3f}</td>"
                        f"<td>{scores['insertion']['mean']:.3f} &plusmn; {scores['insertion']['std']:.3f}"
                        + (f" (the {scored} images with a non-zero map)" if scored < settings["images"] else "")
                        + f"</td><td>{scores['road']['mean']:+.3f} &plusmn; {scores['road']['std']:.3f}</td>"
                        f"{zero}</tr>")
    parts = [
        "<h2>Faithfulness</h2>",
        f"<p class=note>Grad-CAM deletion and insertion AUC (RISE) over {settings['images']} test images: "
        f"pixels removed or revealed in saliency order in {settings['steps']} steps, removed pixels set to "
        f"{_e(settings['fill_description'])}; area under the probability of the predicted class. "
        "Deletion: lower is better; insertion: higher is better. ROAD (pytorch-grad-cam's "
        "<code>ROADCombined</code>) removes the most and, separately, the least relevant pixels, fills them "
        "from their neighbours, and scores half the difference of the two changes in probability, averaged over "
        "a few shares removed: higher is better. Mean &plusmn; std over images. "
        "A map that is zero everywhere (last column) orders pixels at random: those images are left out, and "
        "where every map is zero there is no number. A concept head's exact class map places each concept's "
        "contribution on the region that found it, so its regions add up to the class's score.</p>",
        "<table><tr><th>variant</th><th>map</th><th>deletion AUC &darr;</th><th>insertion AUC &uarr;</th>"
        "<th>ROAD &uarr;</th><th>all-zero maps</th></tr>",
        *rows, "</table>",
        *(f"<p class=note>{_e(variant)}'s own Grad-CAM is zero everywhere on "
          f"{100 * faithfulness['gradcam'][variant].get('zero_maps', 0.0):.0f}% of the images (its cosine scores "
          "ignore a token's scale), so it is not tabled; faithfulness.json keeps its numbers.</p>"
          for variant in class_maps if variant in faithfulness["gradcam"]),
    ]
    parts += _pointing_rows(faithfulness)
    if curves:
        parts.append(f'<p><img src="{_e(curves)}" alt="mean deletion and insertion curves" '
                     'style="max-width:60rem;width:100%"></p>')
    parts += concept_rows(faithfulness["concepts"]) if faithfulness.get("concepts") else []
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


def attention_rows(concepts: dict[str, Any]) -> list[str]:
    """The attention-masking checks of the prototype design (`kgnet.explain.concepts`)."""
    return [
        f"<p class=note>Concept faithfulness of <b>{_e(concepts['variant'])}</b> over {concepts['images']} "
        "test images: the most-attended concept, then a random other one, is removed from the keys of the "
        "infusion attention; the drop is the fall of the predicted class's probability.</p>",
        "<table><tr><th>masked concept</th><th>mean drop</th><th>std</th></tr>",
        f"<tr><td>most attended</td><td>{concepts['top_drop_mean']:+.4f}</td><td>{concepts['top_drop_std']:.4f}</td></tr>",
        f"<tr><td>random</td><td>{concepts['random_drop_mean']:+.4f}</td><td>{concepts['random_drop_std']:.4f}</td></tr>",
        f"<tr><td>images where top &gt; random</td><td>{100 * concepts['fraction_top_greater']:.1f}%</td><td></td></tr>",
        "</table>",
    ]


def concept_removal_rows(c: dict[str, Any]) -> list[str]:
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


def wrong_variants(card: Card) -> list[str]:
    """The variants whose prediction for the card's image is not its true class (none when unknown)."""
    if card.true_label is None:
        return []
    return [variant for variant, (label, _) in card.predictions.items() if label != card.true_label]


def _card(card: Card) -> str:
    wrong = wrong_variants(card)
    badge = f"<span class=badge>wrong: {_e(', '.join(wrong))}</span>" if wrong else ""
    items = [f"<dt>true</dt><dd>{_e(card.true_label) if card.true_label is not None else 'unknown'}</dd>"]
    for variant, (label, probability) in card.predictions.items():
        mark = " class=wrong" if variant in wrong else ""
        items.append(f"<dt>{_e(variant)}</dt><dd{mark}>{_e(label)} ({100 * probability:.0f}%)</dd>")
    if card.concepts:
        names = ", ".join(f"{_e(name)} {_e(value)}" for name, value in card.concepts)
        items.append(f"<dt>why</dt><dd title=\"{_e(card.concepts_title)}\">{names}</dd>")
    return (f'<figure class="card{" wrong" if wrong else ""}"><div class=shot>'
            f'<a href="{_e(card.figure)}"><img src="{_e(card.thumbnail)}" alt="{_e(card.title)}" loading="lazy"></a>'
            f"{badge}</div><figcaption><b>{_e(card.title)}</b><dl>{''.join(items)}</dl></figcaption></figure>")


def _summary(cards: Sequence[Card], scores: dict[str, dict[str, Any]], meaning: str) -> str:
    """What the run scored, how the shown images fared, and what a bar means."""
    variants = list(dict.fromkeys([*scores, *(v for card in cards for v in card.predictions)]))
    known = [card for card in cards if card.true_label is not None]
    rows = []
    for variant in variants:
        score = scores.get(variant)
        top1 = (f"{100 * score['top1']:.1f}%" + (f" of {score['images']:,} images" if score["images"] else "")
                if score else "not in metrics.json")
        wrong = sum(variant in wrong_variants(card) for card in known)
        rows.append(f"<tr><td>{_e(variant)}</td><td>{top1}</td>"
                    + (f"<td>{wrong} of {len(known)}</td>" if known else "") + "</tr>")
    shown = "<th>wrong below</th>" if known else ""
    return "\n".join([
        "<section id=summary>",
        "<table><tr><th>variant</th><th>test top-1</th>" + shown + "</tr>", *rows, "</table>",
        f"<p class=lead>{meaning}</p>",
        "</section>",
    ])


def _reading_notes(bars: str) -> str:
    """How the figures are drawn, for a reader who wants the details (after the numbers)."""
    return ("<h2>Reading the figures</h2><p class=note>Per image: the input, the baseline's Grad-CAM and the "
            "knowledge variant's map (each for its own predicted class; a red frame and &ldquo;wrong&rdquo; mark "
            f"a wrong prediction), then the knowledge variant's concepts. {bars}</p>")


def write_gallery(path: str | Path, *, run: str, cards: Sequence[Card], faithfulness: dict[str, Any] | None,
                  explanation, curves: str | None = None, scores: dict[str, dict[str, Any]] | None = None) -> None:
    """Write index.html: what the run scored, a grid of the images, then the faithfulness numbers.

    Args:
        explanation: How the knowledge variant explains (`kgnet.explain.explanations`): what its
            bars mean, how its figures are drawn, and the rows of its concept checks.
        scores: variant -> {"top1", "images"}: the run's test scores (metrics.json).
    """
    page = "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>kgnet explanations: {_e(run)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>kgnet explanations: {_e(run)}</h1>",
        _summary(cards, scores or {}, explanation.meaning),
        f"<section id=images><h2>Images ({len(cards)})</h2>",
        '<div class="cards">',
        *(_card(card) for card in cards),
        "</div></section>",
        f"<section id=numbers>{_faithfulness_section(faithfulness, curves, explanation.concept_rows)}</section>",
        _reading_notes(explanation.reading),
        "</body></html>",
        "",
    ])
    write_text_atomic(path, page)
