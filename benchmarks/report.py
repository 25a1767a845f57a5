"""Aggregates, the verdict and the report (`benchmarks.md` + PNGs) from saved cell results.

Everything here reads only `<out>/cells/*.json`, so a report can be regenerated at any time
(`python -m benchmarks.run --suite quick --report-only`) and tested on hand-written cells.
Accuracies are in percent, differences in percentage points; a paired difference pairs the
two variants' runs with the same seed (same split, same initialisation).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Iterable

from kgnet.atomic import atomic_path, write_text_atomic

from benchmarks.stats import PairedDifference, describe, paired_difference
from benchmarks.suite import CONTROLS, REPO, SINGLE_SCALES, Suite

GOAL_POINTS = 2.0
ZERO_SHOT_METRICS = ("zero_shot_top1", "gzsl_seen", "gzsl_unseen", "gzsl_harmonic")
ROLE = {"baseline": "baseline", "kgnet": "all scales, WordNet", "kgnet-garments": "all scales, garments ontology",
        "kgnet-shuffled": "control: edges rewired", "kgnet-randomtext": "control: random node text",
        "kgnet-empty": "control: no edges", **{s: "single scale" for s in SINGLE_SCALES}}
VARIANT_ORDER = ("baseline", "kgnet", *SINGLE_SCALES, *CONTROLS, "kgnet-empty", "kgnet-garments")


# ---------------------------------------------------------------------------------------------
# loading and aggregating


def load_records(out: Path) -> dict[str, dict[str, Any]]:
    """Every readable `<out>/cells/*.json`, by cell id."""
    records = {}
    for path in sorted((Path(out) / "cells").glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and "cell" in record:
            records[record["cell"]["id"]] = record
    return records


def _train_records(records: dict[str, dict]) -> list[dict]:
    return [r for r in records.values() if r["cell"]["kind"] == "train" and "metrics" in r]


def _by_seed(records: Iterable[dict], regime: str, variant: str, metric: str = "top1") -> dict[int, float]:
    return {r["cell"]["seed"]: 100 * r["metrics"][metric] for r in records
            if r["cell"]["regime"] == regime and r["cell"]["variant"] == variant and metric in r["metrics"]}


def _ordered(names: Iterable[str], order: Iterable[str]) -> list[str]:
    names, order = set(names), list(order)
    return [n for n in order if n in names] + sorted(n for n in names if n not in order)


def aggregate(suite: Suite, records: dict[str, dict]) -> dict[str, Any]:
    """The suite's summary: per regime and variant top-1 stats and paired differences, cost, verdict."""
    train = _train_records(records)
    regime_names = _ordered({r["cell"]["regime"] for r in train}, [g.name for g in suite.regimes])
    regimes: dict[str, Any] = {}
    for name in regime_names:
        rows = [r for r in train if r["cell"]["regime"] == name]
        meta = suite.regime(name)
        meta = meta.to_dict() if meta else (rows[0].get("regime") or {"name": name})
        variants = _ordered({r["cell"]["variant"] for r in rows}, VARIANT_ORDER)
        base, kg = _by_seed(rows, name, "baseline"), _by_seed(rows, name, "kgnet")
        entry: dict[str, Any] = {}
        for variant in variants:
            top1 = _by_seed(rows, name, variant)
            v: dict[str, Any] = {"top1": describe([top1[s] for s in sorted(top1)]).to_dict(), "seeds": sorted(top1)}
            if variant != "baseline":
                v["vs_baseline"] = paired_difference(top1, base).to_dict()
            if variant not in ("baseline", "kgnet"):
                v["vs_kgnet"] = paired_difference(top1, kg).to_dict()
            if meta.get("zero_shot"):
                v["zero_shot"] = {}
                for metric in ZERO_SHOT_METRICS:
                    values = _by_seed(rows, name, variant, metric)
                    v["zero_shot"][metric] = describe([values[s] for s in sorted(values)]).to_dict()
            entry[variant] = v
        scales = [s for s in SINGLE_SCALES if s in entry and entry[s]["top1"]["mean"] is not None]
        best = max(scales, key=lambda s: entry[s]["top1"]["mean"]) if scales else None
        regimes[name] = {"meta": meta, "cells": len(rows), "variants": entry, "best_single_scale": best}
    cost = {r["cell"]["variant"]: r["result"] for r in records.values() if r["cell"]["kind"] == "cost"}
    defined = {c.id for c in suite.cells}
    summary = {
        "suite": suite.name, "title": suite.title, "budget": suite.budget,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cells_defined": len(defined), "cells_finished": len(defined & set(records)),
        "cells_missing": sorted(defined - set(records)),
        "cells_extra": sorted(set(records) - defined),
        "wall_seconds_total": round(sum(r.get("wall_seconds", 0) for r in records.values()), 1),
        "machines": machines(records),
        "regimes": regimes, "cost": cost,
    }
    summary["verdict"] = verdict(suite, regimes) if suite.low_regime else None
    return summary


def machines(records: dict[str, dict]) -> list[dict[str, Any]]:
    """The distinct machines that ran the cells, with how many cells each and their wall time."""
    seen: dict[str, dict[str, Any]] = {}
    for r in records.values():
        m = r.get("machine") or {}
        text = describe_machine(m)
        entry = seen.setdefault(text, {"machine": text, "cells": 0, "wall_seconds": 0.0})
        entry["cells"] += 1
        entry["wall_seconds"] = round(entry["wall_seconds"] + r.get("wall_seconds", 0), 1)
    return list(seen.values())


def describe_machine(m: dict[str, Any]) -> str:
    device = m.get("gpu") or m.get("device", "?")
    return (f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores ({m.get('torch_threads', '?')} torch threads), "
            f"torch {m.get('torch', '?')}, device {device}")


# ---------------------------------------------------------------------------------------------
# the verdict


def _pd(entry: dict | None) -> PairedDifference | None:
    if not entry:
        return None
    ci = entry.get("ci95")
    return PairedDifference(entry["n"], entry["mean"], entry["sd"], entry["t_quantile"], entry["half_width"],
                            ci[0] if ci else None, ci[1] if ci else None, tuple(entry["diffs"]),
                            tuple(entry["paired_by"]))


def _signed(x: float) -> str:
    """`+1.23`; a value that rounds to zero prints as `+0.00`, never `-0.00`."""
    return f"{0.0 if abs(x) < 0.005 else x:+.2f}"


def fmt_diff(entry: dict | None) -> str:
    """`+1.23 [-0.50, +2.96]`, or why there is no interval."""
    pd = _pd(entry)
    if pd is None or pd.n == 0:
        return "n/a"
    if not pd.has_ci:
        return f"{_signed(pd.mean)} (n={pd.n}, no CI)"
    return f"{_signed(pd.mean)} [{_signed(pd.low)}, {_signed(pd.high)}]"


def fmt_summary(s: dict | None) -> str:
    if not s or s["mean"] is None:
        return "n/a"
    if s["std"] is None:
        return f"{s['mean']:.2f} (n=1)"
    return f"{s['mean']:.2f} ± {s['std']:.2f}"


def verdict(suite: Suite, regimes: dict[str, Any]) -> dict[str, Any]:
    """The goal checked against the numbers: each check met, not met, or not measured yet."""
    checks = []
    low = regimes.get(suite.low_regime, {}).get("variants", {})
    full = regimes.get(suite.full_regime, {}).get("variants", {})

    gain = _pd(low.get("kgnet", {}).get("vs_baseline"))
    if gain is None or gain.n == 0:
        checks.append(("low-data gain", None, f"{suite.low_regime}: not measured yet"))
    else:
        ok = gain.has_ci and gain.mean >= GOAL_POINTS and gain.low > 0
        why = ("" if gain.has_ci else "; one seed gives no interval")
        checks.append(("low-data gain", ok,
                       f"{suite.low_regime}: kgnet - baseline = {fmt_diff(low['kgnet']['vs_baseline'])} points, "
                       f"needs >= +{GOAL_POINTS:g} with the 95% interval above 0{why}"))

    loss = _pd(full.get("kgnet", {}).get("vs_baseline"))
    if loss is None or loss.n == 0:
        checks.append(("no loss at full data", None, f"{suite.full_regime}: not measured yet"))
    else:
        ok = loss.high >= 0 if loss.has_ci else loss.mean >= 0
        checks.append(("no loss at full data", ok,
                       f"{suite.full_regime}: kgnet - baseline = {fmt_diff(full['kgnet']['vs_baseline'])} points, "
                       "needs the 95% interval to reach 0 or above (no measurable loss)"))

    kg_mean = low.get("kgnet", {}).get("top1", {}).get("mean")
    controls = [c for c in CONTROLS if c in low and low[c]["top1"]["mean"] is not None]
    if kg_mean is None or not controls:
        checks.append(("controls lower", None, f"{suite.low_regime} controls: not measured yet"))
    else:
        parts, ok = [], True
        for c in controls:
            # as for the gain: a control counts as lower only when its interval against kgnet is below 0
            c_mean = low[c]["top1"]["mean"]
            pd = _pd(low[c].get("vs_kgnet"))
            lower = pd is not None and pd.high is not None and pd.high < 0
            ok &= lower
            said = ("lower" if lower else
                    "lower on average, but the interval includes 0" if c_mean < kg_mean else "not lower")
            parts.append(f"{c} {c_mean:.2f} is {said} ({c} - kgnet = {fmt_diff(low[c].get('vs_kgnet'))})")
        checks.append(("controls lower", ok, f"{suite.low_regime}: kgnet {kg_mean:.2f}; " + "; ".join(parts)))

    states = [ok for _, ok, _ in checks]
    met = None if None in states and False not in states else all(s is True for s in states)
    head = {True: "goal met", False: "goal not met", None: "not yet decided (cells missing)"}[met]
    words = {True: "met", False: "not met", None: "not measured"}
    text = f"Verdict: {head}. " + " ".join(f"{name}: {words[ok]} - {detail}." for name, ok, detail in checks)
    bullets = [f"- {name}: **{words[ok]}** - {detail}." for name, ok, detail in checks]
    return {"met": met, "headline": f"Verdict: {head}.", "bullets": bullets,
            "checks": [{"check": n, "met": ok, "detail": d} for n, ok, d in checks], "text": text,
            "goal": (f"kgnet >= +{GOAL_POINTS:g} points top-1 over the baseline in {suite.low_regime} with a 95% "
                     f"CI excluding zero; no loss in {suite.full_regime}; the controls below kgnet (95% CI below zero) in "
                     f"{suite.low_regime}")}


# ---------------------------------------------------------------------------------------------
# plots


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


COLOURS = {"baseline": "#555555", "kgnet": "#1f77b4", "kgnet-category": "#2ca02c", "kgnet-relation": "#17becf",
           "kgnet-wide": "#bcbd22", "kgnet-shuffled": "#d62728", "kgnet-randomtext": "#ff7f0e",
           "kgnet-empty": "#e377c2", "kgnet-garments": "#9467bd"}
MARKERS = "osD^v<>ph*"


def _colour(variant: str, i: int) -> str:
    return COLOURS.get(variant, f"C{i % 10}")


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)


def plot_accuracy_vs_size(summary: dict, path: Path) -> bool:
    """Top-1 vs training images per class (log x), one line per variant, error bars = std."""
    regimes = [r for r in summary["regimes"].values()
               if not r["meta"].get("zero_shot") and r["meta"].get("per_class")]
    datasets = {}
    for r in regimes:
        datasets.setdefault(r["meta"].get("dataset", "?"), []).append(r)
    datasets = {d: rs for d, rs in datasets.items() if len({r["meta"]["per_class"] for r in rs}) >= 2}
    if not datasets:
        return False
    plt = _plt()
    fig, axes = plt.subplots(1, len(datasets), figsize=(7.5 * len(datasets), 5), squeeze=False)
    for ax, (dataset, rs) in zip(axes[0], datasets.items()):
        rs = sorted(rs, key=lambda r: r["meta"]["per_class"])
        variants = _ordered({v for r in rs for v in r["variants"]}, VARIANT_ORDER)
        for i, variant in enumerate(variants):
            pts = [(r["meta"]["per_class"], r["variants"][variant]["top1"]) for r in rs if variant in r["variants"]]
            pts = [(x, s) for x, s in pts if s["mean"] is not None]
            if not pts:
                continue
            jitter = 1 + 0.025 * (i - (len(variants) - 1) / 2)  # side by side, so error bars stay readable
            ax.errorbar([x * jitter for x, _ in pts], [s["mean"] for _, s in pts], yerr=[s["std"] or 0 for _, s in pts],
                        label=variant, color=_colour(variant, i), marker=MARKERS[i % len(MARKERS)], capsize=3,
                        linewidth=2.2 if variant in ("baseline", "kgnet") else 1.2,
                        linestyle="-" if variant in ("baseline", "kgnet") else "--")
        ax.set_xscale("log")
        ax.set_xlabel("training images per class (log scale)")
        ax.set_ylabel("test top-1 accuracy (%)")
        ax.set_title(f"{dataset}: accuracy vs training-set size (mean ± std over seeds)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)
    return True


def plot_ablation(summary: dict, path: Path, goal_regime: str | None = None) -> bool:
    """Per regime: each variant minus the baseline (paired, points), error bars = 95% CI."""
    def paired(r: dict) -> list[str]:  # variants with at least one seed paired with the baseline
        return [v for v in _ordered(r["variants"], VARIANT_ORDER)
                if v != "baseline" and (r["variants"][v].get("vs_baseline") or {}).get("n", 0) > 0]

    regimes = [(n, r) for n, r in summary["regimes"].items() if paired(r)]
    if not regimes:
        return False
    plt = _plt()
    cols = min(len(regimes), 4)
    rows = math.ceil(len(regimes) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 4.2 * rows), squeeze=False)
    for ax in axes.flat[len(regimes):]:
        ax.axis("off")
    for ax, (name, r) in zip(axes.flat, regimes):
        variants = paired(r)
        means, errs, colours, notes = [], [], [], []
        for i, v in enumerate(variants):
            pd = r["variants"][v].get("vs_baseline") or {}
            means.append(pd.get("mean") if pd.get("mean") is not None else 0.0)
            errs.append(pd.get("half_width") or 0.0)
            colours.append(_colour(v, i))
            notes.append("" if pd.get("ci95") else f"n={pd.get('n', 0)}")
        x = range(len(variants))
        ax.bar(x, means, 0.6, color=colours, yerr=errs, capsize=4, edgecolor="black", linewidth=0.5,
               label="mean paired difference (error bar: 95% CI)")
        ax.set_xlim(-0.7, max(len(variants), 3) - 0.3)
        for xi, note, m in zip(x, notes, means):
            if note:
                ax.annotate(note, (xi, m), ha="center", va="bottom", fontsize=7)
        ax.axhline(0, color="black", linewidth=0.8)
        if name == goal_regime:
            ax.axhline(GOAL_POINTS, color="green", linestyle="--", linewidth=1, label=f"goal +{GOAL_POINTS:g}")
        ax.set_xticks(list(x))
        ax.set_xticklabels([v.replace("kgnet-", "") if v != "kgnet" else "kgnet" for v in variants],
                           rotation=35, ha="right", fontsize=8)
        ax.set_ylabel("top-1 minus baseline (points)")
        ax.set_title(name, fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle("Ablations: paired difference to the baseline per regime (error bars: 95% t interval)")
    fig.tight_layout()
    _save(fig, path)
    return True


def plot_zero_shot(summary: dict, path: Path) -> bool:
    regimes = [(n, r) for n, r in summary["regimes"].items() if r["meta"].get("zero_shot")]
    if not regimes:
        return False
    plt = _plt()
    fig, axes = plt.subplots(1, len(regimes), figsize=(7 * len(regimes), 4.5), squeeze=False)
    for ax, (name, r) in zip(axes[0], regimes):
        variants = _ordered(r["variants"], VARIANT_ORDER)
        width = 0.8 / max(len(variants), 1)
        for i, v in enumerate(variants):
            stats = [r["variants"][v]["zero_shot"][m] for m in ZERO_SHOT_METRICS]
            xs = [j + (i - (len(variants) - 1) / 2) * width for j in range(len(ZERO_SHOT_METRICS))]
            ax.bar(xs, [s["mean"] or 0 for s in stats], width, yerr=[s["std"] or 0 for s in stats], capsize=3,
                   label=v, color=_colour(v, i), edgecolor="black", linewidth=0.5)
        ax.set_xticks(range(len(ZERO_SHOT_METRICS)))
        ax.set_xticklabels(["zero-shot top-1\n(unseen only)", "GZSL seen", "GZSL unseen", "GZSL harmonic"])
        ax.set_ylabel("accuracy (%)")
        ax.set_title(f"{name}: held-out classes (mean ± std over seeds)")
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend()
    _save(fig, path)
    return True


def plot_cost(summary: dict, path: Path) -> bool:
    from benchmarks.model_cost import peak_mb

    bars = []
    for name, result in summary["cost"].items():
        for label, r in result.get("inputs", {}).items():
            mem = r["peak_memory_mb"]
            bars.append((f"{result['setup']['backbone']}\n{label}", r["train_step"]["ratio"], r["inference"]["ratio"],
                         peak_mb(mem["kgnet"]) / peak_mb(mem["baseline"])))
    if not bars:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(6.5, 2.6 * len(bars)), 4.5))
    width = 0.22
    for k, (what, colour) in enumerate((("training step time", "#1f77b4"), ("inference time", "#ff7f0e"),
                                        ("peak memory", "#2ca02c"))):
        xs = [i + (k - 1) * width for i in range(len(bars))]
        ys = [b[k + 1] for b in bars]
        ax.bar(xs, ys, width, label=what, color=colour, edgecolor="black", linewidth=0.5)
        for x, y in zip(xs, ys):
            ax.annotate(f"x{y:.2f}", (x, y), ha="center", va="bottom", fontsize=8)
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--", label="baseline = 1")
    ax.set_xticks(range(len(bars)))
    ax.set_xticklabels([b[0] for b in bars])
    ax.set_xlim(-0.6, len(bars) - 0.4)
    ax.set_ylabel("kgnet / baseline")
    ax.set_title("Cost of knowledge injection relative to the baseline")
    ax.set_ylim(0, max(1.6, max(max(b[1:]) for b in bars) * 1.35))
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=2, loc="upper center")
    _save(fig, path)
    return True


# ---------------------------------------------------------------------------------------------
# markdown


HOW_TO_READ = """\
- Every number is test-set top-1 accuracy in percent, from the official test split (never
  used for any choice). Each cell trains one variant for one seed; a seed fixes the data
  split, the low-data subsample and the initialisation, so all variants with the same seed
  see the same images and start from the same backbone weights.
- `mean ± std` is over seeds (sample standard deviation). `x - baseline [lo, hi]` is the
  mean of the per-seed differences with its 95% confidence interval from Student's t with
  n - 1 degrees of freedom (n = seeds). With 3 seeds the interval is wide (t = 4.30): a
  difference is only established when the interval excludes 0. One seed gives no interval.
- The controls keep every scale but destroy one kind of knowledge: `kgnet-shuffled` rewires
  the graph's edges at random (degrees kept), `kgnet-randomtext` replaces the node texts by
  random vectors. If the gain comes from the knowledge, both score below `kgnet`.
- Zero-shot: the held-out classes are never trained on. `zero-shot top-1` ranks only the
  unseen classes; GZSL ranks all classes, `seen`/`unseen` are accuracies on each group's test
  images and `harmonic` their harmonic mean. The baseline has no way to name an unseen class,
  so its unseen numbers are the floor.
- Cost: the median over interleaved rounds of the per-round time ratio kgnet / baseline
  (batch 128), and the peak memory of a few training steps (method stated in the table).
"""


def _notes(out: Path) -> list[str]:
    """`<out>/NOTES.md`, written by whoever ran the suite (why a machine was used, what is missing)."""
    notes = out / "NOTES.md"
    return [notes.read_text().strip(), ""] if notes.is_file() else []


def _section(suite: Suite, out: Path, png_dir: Path, png_prefix: str) -> tuple[str, list[Path]]:
    records = load_records(out)
    pngs: list[Path] = []
    title = f"## {suite.title}"
    if not records:
        what = ("the full suite needs the data sets and a GPU; see the README's Benchmarks section"
                if suite.name == "full" else f"run `python -m benchmarks.run --suite {suite.name}`")
        return "\n".join([f"{title}\n\n**{suite.name.capitalize()}-suite results are pending**: no cell has been "
                          f"run yet ({what}).\n", *_notes(out)]), pngs
    summary = aggregate(suite, records)
    lines = [title, "", *_notes(out)]
    lines.append(f"Results: `{_rel(out)}` ({summary['cells_finished']} of {summary['cells_defined']} cells "
                 f"finished" + (f", {len(summary['cells_extra'])} more from other settings" if summary["cells_extra"]
                                else "") + ").")
    missing = summary["cells_missing"]
    if missing:
        lines.append(f"Pending: {len(missing)} cells ({', '.join(missing[:6])}{', ...' if len(missing) > 6 else ''}).")
    lines.append("")
    lines.append("Machine: " + "; ".join(f"{m['machine']} ({m['cells']} cells, {m.get('wall_seconds', 0) / 60:.1f} min)"
                                         for m in summary["machines"]) + ".")
    lines.append(f"Total wall time: {summary['wall_seconds_total'] / 60:.1f} min (the sum of the cells' own wall "
                 "times, cost cells included).")
    lines.append("")
    if summary.get("verdict"):
        v = summary["verdict"]
        lines += [f"Goal: {v['goal']}.", "", f"**{v['headline']}**", "", *v["bullets"], ""]

    regimes = summary["regimes"]
    if regimes:
        lines += ["### Headline", "",
                  "| regime | train images / class | seeds | baseline | kgnet | kgnet - baseline [95% CI] "
                  "| best single scale: - baseline [95% CI] |",
                  "|---|---:|---:|---:|---:|---:|---|"]
        for name, r in regimes.items():
            vs = r["variants"]
            best = r["best_single_scale"]
            best_text = f"{best}: {fmt_diff(vs[best].get('vs_baseline'))}" if best else "n/a"
            seeds = max(vs.get(v, {}).get("top1", {}).get("n", 0) for v in ("baseline", "kgnet"))
            base, kg = vs.get("baseline", {}), vs.get("kgnet", {})
            lines.append(f"| {name} | {r['meta'].get('per_class') or 'n/a'} | {seeds} "
                         f"| {fmt_summary(base.get('top1'))} | {fmt_summary(kg.get('top1'))} "
                         f"| {fmt_diff(kg.get('vs_baseline'))} | {best_text} |")
        lines.append("")
        for name, r in regimes.items():
            lines += [f"### {name}: {r['meta'].get('description', '')}", "",
                      "| variant | what | top-1 % (mean ± std) | seeds | - baseline [95% CI] | - kgnet [95% CI] |",
                      "|---|---|---:|---:|---:|---:|"]
            for variant, v in r["variants"].items():
                what = ROLE.get(variant, "")
                if variant == r["best_single_scale"]:
                    what += " (best single scale)"
                lines.append(f"| {variant} | {what} | {fmt_summary(v['top1'])} | {v['top1']['n']} "
                             f"| {fmt_diff(v.get('vs_baseline')) if variant != 'baseline' else ''} "
                             f"| {fmt_diff(v.get('vs_kgnet')) if 'vs_kgnet' in v else ''} |")
            lines.append("")

    zs = [(n, r) for n, r in regimes.items() if r["meta"].get("zero_shot")]
    for name, r in zs:
        held = next((o.split("=", 1)[1] for o in r["meta"].get("overrides", [])
                     if o.startswith("data.held_out_classes=")), "?")
        lines += [f"### Zero-shot ({name}, held out: {held})", "",
                  "| variant | zero-shot top-1 | GZSL seen | GZSL unseen | GZSL harmonic | seen-class top-1 |",
                  "|---|---:|---:|---:|---:|---:|"]
        for variant, v in r["variants"].items():
            z = v["zero_shot"]
            lines.append(f"| {variant} | " + " | ".join(fmt_summary(z[m]) for m in ZERO_SHOT_METRICS)
                         + f" | {fmt_summary(v['top1'])} |")
        lines.append("")

    if summary["cost"]:
        lines += cost_lines(summary["cost"])

    plots = [("accuracy_vs_size", "Accuracy vs training-set size", lambda p: plot_accuracy_vs_size(summary, p)),
             ("ablation", "Ablations per regime", lambda p: plot_ablation(summary, p, suite.low_regime)),
             ("zero_shot", "Zero-shot", lambda p: plot_zero_shot(summary, p)),
             ("cost", "Cost", lambda p: plot_cost(summary, p))]
    figure_lines = []
    for stem, caption, draw in plots:
        path = png_dir / f"{png_prefix}_{stem}.png"
        if draw(path):
            pngs.append(path)
            figure_lines.append(f"![{caption}]({png_dir.name}/{path.name})")
    if figure_lines:
        lines += ["### Plots", ""] + [line + "\n" for line in figure_lines]
    return "\n".join(lines).rstrip() + "\n", pngs


def cost_lines(cost: dict[str, Any]) -> list[str]:
    from benchmarks.model_cost import peak_mb

    lines = []
    models = {k: v for k, v in cost.items() if "inputs" in v}
    if models:
        lines += ["### Cost", "",
                  "| backbone | input | device | train step s (base / kgnet) | ratio | inference s (base / kgnet) "
                  "| ratio | peak memory MB (base / kgnet) | ratio |",
                  "|---|---|---|---:|---:|---:|---:|---:|---:|"]
        methods = set()
        for result in models.values():
            for label, r in result["inputs"].items():
                t, i, m = r["train_step"], r["inference"], r["peak_memory_mb"]
                methods.add(r.get("peak_memory_method", "peak RSS (VmHWM) of a fresh process"))
                lines.append(
                    f"| {result['setup']['backbone']} | {label} | {result['setup'].get('device', 'cpu')} "
                    f"| {t['baseline_median_s']:.3f} / {t['kgnet_median_s']:.3f} | x{t['ratio']:.2f} "
                    f"| {i['baseline_median_s']:.4f} / {i['kgnet_median_s']:.4f} | x{i['ratio']:.2f} "
                    f"| {peak_mb(m['baseline']):.0f} / {peak_mb(m['kgnet']):.0f} "
                    f"| x{peak_mb(m['kgnet']) / peak_mb(m['baseline']):.2f} |")
        lines += ["", "Peak memory: " + "; ".join(sorted(methods)) + ".", ""]
    kg = cost.get("kg-compile")
    if kg:
        g = kg["graph"]
        lines += ["| knowledge graph | triples | nodes | edges | rdflib parse s | kgnet cold compile s "
                  "| kgnet cached load s |", "|---|---:|---:|---:|---:|---:|---:|",
                  f"| {kg.get('source', 'all WordNet 3.0 nouns')} | {kg['file']['triples']:,} | {g['nodes']:,} "
                  f"| {g['edges']:,} | {kg['rdflib_parse_seconds']:.2f} | {kg['cold_compile_seconds']:.2f} "
                  f"| {kg['warm_load_seconds']:.3f} |", ""]
    return lines


def _rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def write_report(sections: list[tuple[Suite, Path]], report_dir: Path) -> Path:
    """`<report_dir>/benchmarks.md` and its PNGs in `<report_dir>/benchmarks/`; returns the markdown path."""
    report_dir = Path(report_dir)
    png_dir = report_dir / "benchmarks"
    png_dir.mkdir(parents=True, exist_ok=True)
    parts = ["# Benchmarks", "",
             "<!-- generated by python -m benchmarks.run; do not edit -->",
             "_Generated by `python -m benchmarks.run`; do not edit. Regenerate with "
             "`python -m benchmarks.run --suite quick --report-only`._", "",
             "## How to read this", "", HOW_TO_READ]
    written: list[Path] = []
    for suite, out in sections:
        text, pngs = _section(suite, Path(out), png_dir, suite.name)
        parts.append(text)
        written += pngs
    for stale in png_dir.glob("*.png"):  # plots of a previous report that no longer apply
        if stale not in written and any(stale.name.startswith(f"{s.name}_") for s, _ in sections):
            stale.unlink()
    path = report_dir / "benchmarks.md"
    write_text_atomic(path, "\n".join(parts).rstrip() + "\n")
    return path
