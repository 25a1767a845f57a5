"""Aggregates, the verdict and the report (`benchmarks.md` + PNGs) from saved cell results.

Everything here reads only `<out>/cells/*.json` (and the run's `<out>/NOTES.md`), so a report
can be regenerated at any time (`python -m benchmarks.run --suite quick --report-only`) and
tested on hand-written cells. Accuracies are in percent, differences in percentage points; a
paired difference pairs two variants' runs with the same seed (same split, same
initialisation). Every comparison is written `kgnet - other`: positive means kgnet is ahead.
The verdict checks the suite's goals (`Suite.gains`, `no_loss`, `zero_shot_goals`,
`wall_minutes`): each check is met, not met, or not measured (cells missing, or fewer than two
paired seeds, which give no interval).
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Any, Iterable

from kgnet.atomic import atomic_path, write_text_atomic

from kgnet.variants import VARIANTS

from benchmarks.stats import PairedDifference, describe, paired_difference
from benchmarks.suite import CONTROLS, REPO, Suite

#: Zero-shot metrics in the cells' metrics (fractions, shown in percent); the calibrated ones
#: and AUSUC only where the run calibrated its GZSL scores.
ZERO_SHOT_METRICS = ("zero_shot_top1", "gzsl_seen", "gzsl_unseen", "gzsl_harmonic", "gzsl_calibrated_seen",
                     "gzsl_calibrated_unseen", "gzsl_calibrated_harmonic", "gzsl_ausuc")
#: Raw numbers (not fractions): the calibration constant subtracted from the seen classes' logits.
ZERO_SHOT_RAW = ("gzsl_gamma",)
METRIC_NAMES = {"zero_shot_top1": "zero-shot top-1 (unseen only)", "gzsl_seen": "GZSL seen",
                "gzsl_unseen": "GZSL unseen", "gzsl_harmonic": "GZSL H", "gzsl_gamma": "gamma",
                "gzsl_calibrated_seen": "calibrated seen", "gzsl_calibrated_unseen": "calibrated unseen",
                "gzsl_calibrated_harmonic": "calibrated H", "gzsl_ausuc": "AUSUC"}
PLOT_NAMES = {"zero_shot_top1": "zero-shot\ntop-1\n(unseen only)", "gzsl_seen": "GZSL\nseen",
              "gzsl_unseen": "GZSL\nunseen", "gzsl_harmonic": "GZSL\nH", "gzsl_calibrated_seen": "calibrated\nseen",
              "gzsl_calibrated_unseen": "calibrated\nunseen", "gzsl_calibrated_harmonic": "calibrated\nH",
              "gzsl_ausuc": "AUSUC"}
#: What each variant is: the registry's words, and the suites' own labels (a variant on another ontology).
ROLE = {**{name: v.description for name, v in VARIANTS.items()}, "kgnet-wordnet": "kgnet on the WordNet ontology"}
OTHERS = ("kgnet-wordnet", "kgnet-prototype",
          *(name for name, v in VARIANTS.items() if v.role != "model" and name not in CONTROLS))
VARIANT_ORDER = ("baseline", "kgnet", *CONTROLS, *OTHERS)
WALL_TIME_NOTE = re.compile(r"^\s*wall[_ ]time\s*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)


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
    """The training cells' records; an `extend` cell counts as its base run (top-1 among its own
    classes), so the tables of what ran and of each regime cover it too."""
    train = [r for r in records.values() if r["cell"]["kind"] == "train" and "metrics" in r]
    return train + [{**r, "metrics": {"top1": r["result"]["rows"][0]["base_run_top1"]}} for r in records.values()
                    if r["cell"]["kind"] == "extend" and r.get("result", {}).get("rows")]


def extension_rows(records: dict[str, dict], regime: str) -> list[dict]:
    """The rows (one per seed, variant and k: `benchmarks.extension.run_one`) of a regime's `extend` cells."""
    return [{**row, "variant": r["cell"]["variant"]} for r in records.values()
            if r["cell"]["kind"] == "extend" and r["cell"]["regime"] == regime for row in r["result"]["rows"]]


def _by_seed(records: Iterable[dict], regime: str, variant: str, metric: str = "top1",
             scale: float = 100.0) -> dict[int, float]:
    return {r["cell"]["seed"]: scale * r["metrics"][metric] for r in records
            if r["cell"]["regime"] == regime and r["cell"]["variant"] == variant
            and r["metrics"].get(metric) is not None}


def _ordered(names: Iterable[str], order: Iterable[str]) -> list[str]:
    names, order = set(names), list(order)
    return [n for n in order if n in names] + sorted(n for n in names if n not in order)


def _ontology(rows: list[dict], meta: dict) -> str:
    """The ontology file a variant's cells used: their own, or the data set's card's."""
    ontology = rows[0]["cell"].get("ontology")
    if ontology:
        return Path(ontology).name
    from kgnet.data.cards import load_card
    from kgnet.errors import KgnetError

    try:
        return load_card(meta.get("data_kind", "")).ontology.name
    except KgnetError:
        return "the data set's"


def _kgnet_minus(rows: list[dict], regime: str, variant: str, metrics: Iterable[str]) -> dict[str, dict]:
    """metric -> kgnet - variant on that metric, paired by seed."""
    return {m: paired_difference(_by_seed(rows, regime, "kgnet", m), _by_seed(rows, regime, variant, m)).to_dict()
            for m in metrics}


def planned(suite: Suite) -> dict[str, dict[str, int]]:
    """regime -> variant -> number of seeds the suite defines."""
    seeds: dict[str, dict[str, int]] = {}
    for c in suite.cells:
        if c.kind != "cost":
            seeds.setdefault(c.regime, {}).setdefault(c.variant, 0)
            seeds[c.regime][c.variant] += 1
    return seeds


def aggregate(suite: Suite, records: dict[str, dict]) -> dict[str, Any]:
    """The suite's summary: per regime and variant top-1 stats, paired differences, cost, verdict."""
    train = _train_records(records)
    plan = planned(suite)
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
            mine = [r for r in rows if r["cell"]["variant"] == variant]
            top1 = _by_seed(mine, name, variant)
            v: dict[str, Any] = {"top1": describe([top1[s] for s in sorted(top1)]).to_dict(), "seeds": sorted(top1),
                                 "planned_seeds": plan.get(name, {}).get(variant, 0),
                                 "ontology": _ontology(mine, meta) if variant != "baseline" else None,
                                 "wall_seconds": round(sum(r.get("wall_seconds", 0) for r in mine), 1),
                                 "cell_seconds": [round(r.get("wall_seconds", 0), 1) for r in mine]}
            if variant != "baseline":
                v["vs_baseline"] = paired_difference(top1, base).to_dict()
            if variant != "kgnet":
                v["kgnet_minus"] = paired_difference(kg, top1).to_dict()
            if meta.get("zero_shot"):
                v["zero_shot"] = {}
                for metric in ZERO_SHOT_METRICS + ZERO_SHOT_RAW:
                    values = _by_seed(mine, name, variant, metric, 1.0 if metric in ZERO_SHOT_RAW else 100.0)
                    v["zero_shot"][metric] = describe([values[s] for s in sorted(values)]).to_dict()
                if variant != "kgnet":
                    v["zero_shot_kgnet_minus"] = _kgnet_minus(rows, name, variant, ZERO_SHOT_METRICS)
            entry[variant] = v
        regimes[name] = {"meta": meta, "cells": len(rows), "variants": entry,
                         "wall_seconds": round(sum(r.get("wall_seconds", 0) for r in rows), 1)}
    cost = {r["cell"]["variant"]: r["result"] for r in records.values() if r["cell"]["kind"] == "cost"}
    defined = {c.id for c in suite.cells}
    from benchmarks import extension as protocol

    extension = {}
    for regime in (r for r in suite.regimes if r.extension):
        rows = extension_rows(records, regime.name)
        if rows:
            extension[regime.name] = {"summary": protocol.summary(rows),
                                      "checks": [{"check": what, "measured": measured, "met": met}
                                                 for what, measured, met in protocol.must_show(rows)]}
    summary = {
        "suite": suite.name, "title": suite.title, "budget": suite.budget,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cells_defined": len(defined), "cells_finished": len(defined & set(records)),
        "cells_missing": sorted(defined - set(records)),
        "cells_extra": sorted(set(records) - defined),
        "wall_seconds_total": round(sum(r.get("wall_seconds", 0) for r in records.values()), 1),
        "machines": machines(records),
        "planned": plan, "regimes": regimes, "cost": cost, "extension": extension,
    }
    summary["verdict"] = verdict(suite, regimes, len(summary["cells_missing"]), extension) if suite.has_goals else None
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
# formatting


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


def fmt_diff(entry: dict | None, n: bool = False) -> str:
    """`+1.23 [-0.50, +2.96]` (with ` n=10` when asked), or why there is no interval."""
    pd = _pd(entry)
    if pd is None or pd.n == 0:
        return "n/a"
    if not pd.has_ci:
        return f"{_signed(pd.mean)} (n={pd.n}, no CI)"
    return f"{_signed(pd.mean)} [{_signed(pd.low)}, {_signed(pd.high)}]" + (f" n={pd.n}" if n else "")


def fmt_summary(s: dict | None, ci: bool = False) -> str:
    """`61.20 ± 1.30` (mean ± sd over seeds), or with `ci` the mean and its 95% interval."""
    if not s or s["mean"] is None:
        return "n/a"
    if s["std"] is None:
        return f"{s['mean']:.2f} (n=1)"
    if ci and s.get("half_width") is not None:
        return f"{s['mean']:.2f} [{s['mean'] - s['half_width']:.2f}, {s['mean'] + s['half_width']:.2f}]"
    return f"{s['mean']:.2f} ± {s['std']:.2f}"


WORDS = {True: "met", False: "not met", None: "not measured"}


# ---------------------------------------------------------------------------------------------
# the verdict


def _gain_check(regime: str, variants: dict, points: float, planned_n: int) -> dict[str, Any]:
    entry = variants.get("kgnet", {}).get("vs_baseline")
    needs = f">= +{points:g} points, 95% CI above 0"
    return _difference_check(regime, "kgnet - baseline", entry, needs, planned_n,
                             lambda pd: pd.mean >= points and pd.low > 0)


def _difference_check(regime: str, what: str, entry: dict | None, needs: str, planned_n: int, ok) -> dict[str, Any]:
    pd = _pd(entry)
    more = f" of {planned_n} planned" if pd is not None and 0 < pd.n < planned_n else ""
    if pd is None or pd.n == 0:
        return {"regime": regime, "check": what, "needs": needs, "measured": "no cells yet", "met": None}
    measured = fmt_diff(entry) + (f" n={pd.n}{more}" if pd.has_ci else more)
    if not pd.has_ci:
        return {"regime": regime, "check": what, "needs": needs, "measured": measured + " (2+ seeds needed)",
                "met": None}
    return {"regime": regime, "check": what, "needs": needs, "measured": measured, "met": bool(ok(pd))}


def _control_checks(suite: Suite, regime: str, variants: dict, plan: dict[str, int],
                    difference=lambda v: v.get("kgnet_minus"), on: str = "") -> list[dict[str, Any]]:
    """kgnet - control, interval above 0, for every control of CONTROLS (or why it is not run);
    `difference` picks the paired difference from a variant's entry (top-1 by default), `on`
    names its metric in the check."""
    not_run = dict(suite.not_run)
    checks = []
    for control in CONTROLS:
        what, needs = f"kgnet - {control}{on}", "95% CI above 0 (control below kgnet)"
        if control in not_run or (control not in plan and control not in variants):
            why = not_run.get(control, "not run in this regime (CPU budget)")
            checks.append({"regime": regime, "check": what, "needs": needs, "measured": f"not run: {why}",
                           "met": "not run"})
            continue
        checks.append(_difference_check(regime, what, difference(variants.get(control, {})), needs,
                                        plan.get(control, 0), lambda pd: pd.low > 0))
    return checks


def _state(states: list) -> bool | None:
    """All met: True; any not met: False; else None (something not measured)."""
    states = [s for s in states if s != "not run"]
    if False in states:
        return False
    return True if states and all(s is True for s in states) else None


def verdict(suite: Suite, regimes: dict[str, Any], pending: int = 0,
            extension: dict[str, Any] | None = None) -> dict[str, Any]:
    """The suite's goals checked against the numbers: each check met, not met, or not measured.

    A check uses the seeds finished so far (its line says how many of those planned);
    `pending` cells make a "not met" headline say "so far". `extension` (regime -> its
    `benchmarks.extension.must_show` checks) adds the checks of the regimes that add classes.
    """
    checks: list[dict[str, Any]] = []
    plan = planned(suite)
    per_regime: list[tuple[str, str, list[dict]]] = []
    for regime in (r for r in suite.regimes if r.extension):
        found = (extension or {}).get(regime.name, {}).get("checks")
        mine = [{"regime": regime.name, "needs": "(stated in the check)", **c} for c in found] if found else \
            [{"regime": regime.name, "check": "the checks of benchmarks.extension", "needs": "", "measured":
              "no cells yet", "met": None}]
        checks += mine
        per_regime.append((regime.name, "classes added to a trained model: the checks of issue 34", mine))
    for name, points in suite.gains:
        variants = regimes.get(name, {}).get("variants", {})
        mine = [_gain_check(name, variants, points, plan.get(name, {}).get("kgnet", 0)),
                *_control_checks(suite, name, variants, plan.get(name, {}))]
        checks += mine
        per_regime.append((name, f"kgnet - baseline >= +{points:g} and every control below kgnet", mine))
    for name in suite.no_loss:
        variants = regimes.get(name, {}).get("variants", {})
        mine = [_difference_check(name, "kgnet - baseline", variants.get("kgnet", {}).get("vs_baseline"),
                                  "95% CI reaching 0 or above (no measurable loss)",
                                  plan.get(name, {}).get("kgnet", 0), lambda pd: pd.high >= 0)]
        checks += mine
        per_regime.append((name, "no measurable loss", mine))
    zero_shot = [zero_shot_check(regimes, *goal) for goal in suite.zero_shot_goals]
    zero_shot += [zero_shot_control_check(regimes, *goal, plan) for goal in suite.zero_shot_controls]

    met = _state([c["met"] for c in checks])
    head = {True: "goal met", False: "goal not met", None: "not yet decided (cells missing)"}[met]
    if met is False and pending:
        head += f" so far ({pending} cells pending)"
    bullets = []
    for name, goal, mine in per_regime:
        state = _state([c["met"] for c in mine])
        failed = [c["check"] for c in mine if c["met"] is False]
        open_ = [c["check"] for c in mine if c["met"] is None]
        detail = (f"; not met: {', '.join(failed)}" if failed else "") + \
                 (f"; not measured: {', '.join(open_)}" if open_ else "")
        bullets.append(f"- {name} ({goal}): **{WORDS[state]}**{detail}.")
    text = f"Verdict: {head}. " + " ".join(b[2:].replace("**", "") for b in bullets)
    by_points: dict[float, list[str]] = {}
    for name, points in suite.gains:
        by_points.setdefault(points, []).append(name)
    gains = ", ".join(f"+{p:g} points in {' and '.join(ns)}" for p, ns in by_points.items())
    extending = [r.name for r in suite.regimes if r.extension]
    goal = "; ".join(
        ([f"in {', '.join(extending)}, the checks of issue 34 on classes added to a trained model (in its section "
          "below)"]
         if extending else [])
        + ([f"kgnet - baseline at least {gains}"
          + ", each with its 95% interval above 0, and in each of those regimes every control below kgnet "
          "(the interval of kgnet - control above 0)"] if suite.gains else [])
        + ([f"no measurable loss in {' and '.join(suite.no_loss)} (the interval of kgnet - baseline reaching 0 "
            "or above)"] if suite.no_loss else []))
    return {"met": met, "headline": f"Verdict: {head}.", "bullets": bullets, "checks": checks,
            "zero_shot": zero_shot, "text": text, "goal": goal}


def zero_shot_check(regimes: dict, regime: str, variant: str, metric: str, bound: float) -> dict[str, Any]:
    """The mean over seeds of a zero-shot metric against its bound (percent)."""
    v = regimes.get(regime, {}).get("variants", {}).get(variant)
    needs = f"mean >= {bound:g}%"
    base = {"regime": regime, "variant": variant, "metric": metric, "needs": needs}
    if v is None:
        return {**base, "measured": "no cells yet", "met": None}
    s = v["zero_shot"][metric]
    if s["n"] == 0:
        return {**base, "measured": f"not in the records ({metric} absent)", "met": None}
    return {**base, "measured": fmt_summary(s, ci=True) + f" n={s['n']}", "met": s["mean"] >= bound}


def zero_shot_control_check(regimes: dict, regime: str, control: str, metric: str, points: float,
                            plan: dict) -> dict[str, Any]:
    """kgnet - control on a zero-shot metric, paired by seed: its mean against `points`."""
    entry = regimes.get(regime, {}).get("variants", {}).get(control, {}).get("zero_shot_kgnet_minus", {}).get(metric)
    check = _difference_check(regime, f"kgnet - {control}", entry, f"mean >= +{points:g} points",
                              plan.get(regime, {}).get(control, 0), lambda pd: pd.mean >= points)
    if check["met"] is None and entry and entry["n"] == 1:  # a mean is what is asked: one pair decides it
        check.update(measured=fmt_diff(entry, n=True), met=entry["mean"] >= points)
    return {"regime": regime, "variant": f"kgnet - {control}", "metric": metric, "needs": check["needs"],
            "measured": check["measured"], "met": check["met"]}


def wall_time_note(out: Path) -> str | None:
    """The `wall_time: ...` line of `<out>/NOTES.md` (the suite's measured end-to-end wall time)."""
    notes = Path(out) / "NOTES.md"
    if not notes.is_file():
        return None
    m = WALL_TIME_NOTE.search(notes.read_text())
    return m.group(1) if m else None


def wall_time_check(note: str | None, target: float | None) -> bool | None:
    """Whether the noted wall time (`52 min ...`) is within the target; None without a number."""
    m = re.match(r"([\d.]+)\s*min", note or "")
    if target is None or m is None:
        return None
    return float(m.group(1)) <= target


# ---------------------------------------------------------------------------------------------
# plots


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


COLOURS = {**{name: v.colour for name, v in VARIANTS.items()}, "kgnet-wordnet": "#2ca02c"}
MARKERS = "osD^v<>ph*"


def _colour(variant: str, i: int) -> str:
    return COLOURS.get(variant, f"C{i % 10}")


def _style(variant: str) -> dict[str, Any]:
    if variant in ("baseline", "kgnet"):
        return {"linewidth": 2.4, "linestyle": "-"}
    return {"linewidth": 1.2, "linestyle": "--" if variant in CONTROLS else ":"}


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)


def _size_regimes(summary: dict) -> dict[str, list[tuple[str, dict]]]:
    """Data set -> its non-zero-shot regimes with a size, by size (2+ sizes only)."""
    datasets: dict[str, list[tuple[str, dict]]] = {}
    for name, r in summary["regimes"].items():
        if not r["meta"].get("zero_shot") and not r["meta"].get("extension") and r["meta"].get("per_class"):
            datasets.setdefault(r["meta"].get("dataset", "?"), []).append((name, r))
    return {d: sorted(rs, key=lambda nr: nr[1]["meta"]["per_class"]) for d, rs in datasets.items()
            if len({r["meta"]["per_class"] for _, r in rs}) >= 2}


def _size_axis(ax, rs: list[tuple[str, dict]]) -> None:
    xs = sorted({r["meta"]["per_class"] for _, r in rs})
    full = {r["meta"]["per_class"] for name, r in rs if name == "full"}
    ax.set_xscale("log")
    ax.set_xticks(xs)
    ax.set_xticklabels([f"full\n({x:,})" if x in full else f"{x:,}" for x in xs])
    ax.minorticks_off()
    ax.set_xlabel("training images per class (log scale)")
    ax.grid(True, alpha=0.3)


def _jitter(i: int, count: int) -> float:
    return 1 + 0.03 * (i - (count - 1) / 2)  # side by side, so the error bars stay readable


def _variant_lines(ax, rs: list[tuple[str, dict]], variants: list[str], stats) -> None:
    """One line per variant over the regimes' `per_class` (jittered side by side), error bars =
    95% t interval; `stats` picks a variant entry's describe() dict."""
    for i, variant in enumerate(variants):
        pts = [(r["meta"]["per_class"], stats(r["variants"][variant])) for _, r in rs
               if variant in r["variants"] and stats(r["variants"][variant])["mean"] is not None]
        if not pts:
            continue
        seeds = sorted({s["n"] for _, s in pts})
        ax.errorbar([x * _jitter(i, len(variants)) for x, _ in pts], [s["mean"] for _, s in pts],
                    yerr=[s.get("half_width") or 0 for _, s in pts], capsize=3, color=_colour(variant, i),
                    marker=MARKERS[i % len(MARKERS)], markersize=5,
                    label=f"{variant} ({' or '.join(map(str, seeds))} seeds)", **_style(variant))


def plot_accuracy_vs_size(summary: dict, path: Path) -> bool:
    """Top-1 vs training images per class (log x), one line per variant, error bars = 95% t interval."""
    datasets = _size_regimes(summary)
    if not datasets:
        return False
    plt = _plt()
    fig, axes = plt.subplots(1, len(datasets), figsize=(9 * len(datasets), 6), squeeze=False)
    for ax, (dataset, rs) in zip(axes[0], datasets.items()):
        variants = _ordered({v for _, r in rs for v in r["variants"]}, VARIANT_ORDER)
        _variant_lines(ax, rs, variants, lambda v: v["top1"])
        _size_axis(ax, rs)
        ax.set_ylabel("test top-1 accuracy (%)")
        ax.set_title(f"{dataset}: top-1 vs training images per class\n(mean over seeds, error bars: 95% t interval)")
        ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)
    return True


def plot_differences(summary: dict, path: Path, gains: dict[str, float]) -> bool:
    """kgnet - each other variant (paired by seed) vs images per class, error bars = 95% t interval."""
    datasets = _size_regimes(summary)
    if not datasets:
        return False
    plt = _plt()
    fig, axes = plt.subplots(1, len(datasets), figsize=(9 * len(datasets), 5.5), squeeze=False)
    drawn = False
    for ax, (dataset, rs) in zip(axes[0], datasets.items()):
        variants = [v for v in _ordered({v for _, r in rs for v in r["variants"]}, VARIANT_ORDER) if v != "kgnet"]
        for i, variant in enumerate(variants):
            pts = [(r["meta"]["per_class"], _pd(r["variants"][variant].get("kgnet_minus"))) for _, r in rs
                   if variant in r["variants"]]
            pts = [(x, pd) for x, pd in pts if pd is not None and pd.n > 0]
            if not pts:
                continue
            drawn = True
            ax.errorbar([x * _jitter(i, len(variants)) for x, _ in pts], [pd.mean for _, pd in pts],
                        yerr=[pd.half_width or 0 for _, pd in pts], capsize=3, color=_colour(variant, i + 1),
                        marker=MARKERS[(i + 1) % len(MARKERS)], markersize=5, label=f"kgnet - {variant}",
                        **_style(variant))
        goals = [(r["meta"]["per_class"], gains[name]) for name, r in rs if name in gains]
        if goals:
            ax.scatter([x for x, _ in goals], [g for _, g in goals], marker="_", s=600, color="green", zorder=5,
                       label="goal for kgnet - baseline")
        ax.axhline(0, color="black", linewidth=0.8)
        _size_axis(ax, rs)
        ax.set_ylabel("kgnet minus the variant (points; > 0: kgnet ahead)")
        ax.set_title(f"{dataset}: paired differences, kgnet - variant\n(error bars: 95% t interval)")
        ax.legend(fontsize=8, loc="best")
    if not drawn:
        _plt().close(fig)
        return False
    _save(fig, path)
    return True


def plot_zero_shot(summary: dict, path: Path) -> bool:
    regimes = [(n, r) for n, r in summary["regimes"].items() if r["meta"].get("zero_shot")]
    if not regimes:
        return False
    plt = _plt()
    fig, axes = plt.subplots(1, len(regimes), figsize=(8 * len(regimes), 4.8), squeeze=False)
    for ax, (name, r) in zip(axes[0], regimes):
        variants = _ordered(r["variants"], VARIANT_ORDER)
        metrics = [m for m in ZERO_SHOT_METRICS if any(v["zero_shot"][m]["n"] for v in r["variants"].values())]
        width = 0.8 / max(len(variants), 1)
        for i, v in enumerate(variants):
            stats = [r["variants"][v]["zero_shot"][m] for m in metrics]
            xs = [j + (i - (len(variants) - 1) / 2) * width for j in range(len(metrics))]
            ax.bar(xs, [math.nan if s["mean"] is None else s["mean"] for s in stats], width,  # absent: no bar
                   yerr=[s.get("half_width") or 0 for s in stats], capsize=3, label=v, color=_colour(v, i),
                   edgecolor="black", linewidth=0.5)
        ax.set_xticks(range(len(metrics)))
        ax.set_xticklabels([PLOT_NAMES.get(m, m) for m in metrics], fontsize=8)
        ax.set_ylabel("accuracy (%)")
        ax.set_title(f"{name}: held-out classes (mean, error bars: 95% t interval)")
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=8)
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
  used for any choice; the few-shot regimes score a fixed subset of it). Each cell trains one
  variant for one seed; a seed fixes the data split, the few-shot subsample and the
  initialisation, so all variants with the same seed see the same images and start from the
  same backbone weights.
- `mean ± std` is over seeds (sample standard deviation). `kgnet - x [lo, hi] n=N` is the mean
  of the N per-seed differences (kgnet minus x: positive means kgnet is ahead) with its 95%
  confidence interval from Student's t with N - 1 degrees of freedom. A difference is only
  established when the interval excludes 0. One seed gives no interval.
- `kgnet` is the concept head: each class score is an exact sum of the activations of the
  ontology concepts linked to that class (for Fashion-MNIST the garments ontology's parts,
  materials and body regions). The controls go through the same code: `kgnet-permuted` gives
  each class another class's concepts (same geometry, wrong meaning), `kgnet-noknowledge` one
  concept per class (the machinery without knowledge), `kgnet-shuffled` rewires the
  ontology's edges (degrees kept). If the gain comes from the knowledge, every control scores
  below `kgnet`.
- Adding classes (`extend`): a model trained on 8 classes gets 2 more, described in the
  ontology, with 0, 1 or 5 images each; every test image is classified among all 10. `novel`
  and `base` are the mean per-class accuracies of each group, `H` their harmonic mean, at the
  offset chosen on validation; AUSUC reads the whole novel-base trade-off, so a gain bought
  with base accuracy does not count as a better model.
- Zero-shot: the held-out classes are never trained on. `zero-shot top-1` ranks only the
  unseen classes; GZSL ranks all classes, `seen`/`unseen` are accuracies on each group's test
  images and `H` their harmonic mean, uncalibrated and (where the run has a calibration
  constant `gamma`, chosen on validation, subtracted from the seen classes' scores)
  calibrated; `AUSUC` is the area under the seen-unseen accuracy curve as the constant sweeps.
  The baseline has no way to name an unseen class, so its unseen numbers are the floor.
- Cost: the median over interleaved rounds of the per-round time ratio kgnet / baseline
  (batch 128), and the peak memory of a few training steps (method stated in the table), for
  today's default model.
- The Fashion-MNIST training cells pin resnet10t's output stride at 16 (a 2x2 token grid at
  28 px), the default when they ran. The default is now 4 (7x7, so explanation maps can
  locate a part): on the default run it costs about 2.7x the step time, with top-1 the same
  within seed noise (`benchmarks/token_grid.py`, `benchmarks/results/token_grid.json`).
"""


def _notes(out: Path) -> list[str]:
    """`<out>/NOTES.md` (written by whoever ran the suite), less its `wall_time:` line."""
    notes = out / "NOTES.md"
    if not notes.is_file():
        return []
    text = WALL_TIME_NOTE.sub("", notes.read_text()).strip()
    return [text, ""] if text else []


def _short(variant: str) -> str:
    return variant.replace("kgnet-", "") if variant.startswith("kgnet-") else variant


def _check_table(checks: list[dict[str, Any]], variant: bool = False) -> list[str]:
    head = "| regime | " + ("variant | metric | " if variant else "check | ") + "needs | measured | verdict |"
    lines = [head, "|---|" + ("---|---|" if variant else "---|") + "---|---|---|"]
    for c in checks:
        state = c["met"] if c["met"] == "not run" else f"**{WORDS[c['met']]}**"
        what = f"{c['variant']} | {METRIC_NAMES.get(c['metric'], c['metric'])}" if variant else c["check"]
        lines.append(f"| {c['regime']} | {what} | {c['needs']} | {c['measured']} | {state} |")
    return lines + [""]


def where_lines(suite: Suite, summary: dict, out: Path) -> list[str]:
    """What runs where: regimes x variants with finished / planned seeds, the wall times."""
    plan = summary["planned"]
    regimes = [r.name for r in suite.regimes if r.name in plan] + \
        sorted(n for n in summary["regimes"] if n not in plan)
    variants = _ordered({v for r in regimes for v in plan.get(r, {})} |
                        {v for r in summary["regimes"].values() for v in r["variants"]}, VARIANT_ORDER)
    lines = ["### What runs where", "",
             "Seeds finished per regime and variant (`3/10`: 3 of 10 planned; `-`: not run in that regime).", "",
             "| regime | images / class | " + " | ".join(_short(v) for v in variants)
             + " | cells | wall time (sum of cells) | one cell (median) |",
             "|---|---:|" + "---:|" * len(variants) + "---:|---:|---:|"]
    for name in regimes:
        r = summary["regimes"].get(name, {})
        meta = suite.regime(name)
        per_class = (meta.per_class if meta else r.get("meta", {}).get("per_class")) or "n/a"
        cells = []
        for v in variants:
            done = r.get("variants", {}).get(v, {}).get("top1", {}).get("n", 0)
            want = plan.get(name, {}).get(v, 0)
            cells.append("-" if not want and not done else str(done) if done == want else f"{done}/{want}")
        total_done = sum(r.get("variants", {}).get(v, {}).get("top1", {}).get("n", 0) for v in variants)
        lines.append(f"| {name} | {per_class} | " + " | ".join(cells)
                     + f" | {total_done}/{sum(plan.get(name, {}).values())}"
                     + f" | {r.get('wall_seconds', 0) / 60:.1f} min | {_median_cell(r)} |")
    not_run = [f"`{c}`: {why}" for c, why in suite.not_run]
    if not_run:
        lines += ["", "Not run: " + "; ".join(not_run) + "."]
    cost = sum(rec.get("wall_seconds", 0) for rec in load_records(out).values() if rec["cell"]["kind"] == "cost")
    note = wall_time_note(out)
    lines += ["", f"Sum of the cells' own wall times: {summary['wall_seconds_total'] / 60:.1f} min "
                  f"(cost cells {cost / 60:.1f} min included): the time one process would take.",
              "Measured end-to-end wall time: " + (note if note else
                                                   "not recorded (the run's NOTES.md has no `wall_time:` line)")
              + "."]
    if suite.wall_minutes is not None:
        ok = wall_time_check(note, suite.wall_minutes)
        lines.append(f"Within the {suite.wall_minutes:g}-minute target: **{WORDS[ok]}**.")
    return lines + [""]


def _median_cell(regime: dict) -> str:
    """The median wall time of one of the regime's cells (`n/a` before any has run)."""
    times = sorted(t for v in regime.get("variants", {}).values() for t in v.get("cell_seconds", []))
    if not times:
        return "n/a"
    middle = len(times) // 2
    return f"{(times[middle] if len(times) % 2 else (times[middle - 1] + times[middle]) / 2):.0f} s"


def differences_lines(summary: dict, suite: Suite) -> list[str]:
    """kgnet against the baseline and each control (and the other designs), regime by regime."""
    regimes = [(n, r) for n, r in summary["regimes"].items()
               if not r["meta"].get("zero_shot") and not r["meta"].get("extension")]
    if not regimes:
        return []
    not_run = dict(suite.not_run)
    others = _ordered({v for _, r in regimes for v in r["variants"]} - {"baseline", "kgnet", *CONTROLS}, OTHERS)
    columns = ["baseline", *CONTROLS, *others]
    lines = ["### kgnet against the baseline and each control", "",
             "Paired by seed: kgnet minus the column's variant, mean [95% t interval] n=seeds paired; "
             "positive: kgnet ahead.", "",
             "| regime | images / class | baseline top-1 | kgnet top-1 | "
             + " | ".join(f"kgnet - {c}" for c in columns) + " |",
             "|---|---:|---:|---:|" + "---:|" * len(columns)]
    for name, r in regimes:
        vs = r["variants"]
        row = []
        for c in columns:
            if c in vs:
                row.append(fmt_diff(vs[c].get("kgnet_minus"), n=True))
            elif c in not_run:
                row.append("not run (see above)")
            elif summary["planned"].get(name, {}).get(c):
                row.append("pending")
            else:
                row.append("-")
        lines.append(f"| {name} | {r['meta'].get('per_class') or 'n/a'} | "
                     f"{fmt_summary(vs.get('baseline', {}).get('top1'))} | "
                     f"{fmt_summary(vs.get('kgnet', {}).get('top1'))} | "
                     + " | ".join(row) + " |")
    return lines + [""]


def regime_lines(name: str, r: dict) -> list[str]:
    lines = [f"#### {name}: {r['meta'].get('description', '')}", "",
             "| variant | what | ontology | top-1 % (mean ± std) | 95% CI of the mean | seeds "
             "| - baseline [95% CI] | kgnet - this [95% CI] |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for variant, v in r["variants"].items():
        s = v["top1"]
        ci = (f"[{s['mean'] - s['half_width']:.2f}, {s['mean'] + s['half_width']:.2f}]"
              if s.get("half_width") is not None else "n/a")
        lines.append(f"| {variant} | {ROLE.get(variant, '')} | {v.get('ontology') or '-'} | {fmt_summary(s)} | {ci} "
                     f"| {s['n']} | {fmt_diff(v.get('vs_baseline')) if variant != 'baseline' else ''} "
                     f"| {fmt_diff(v.get('kgnet_minus')) if variant != 'kgnet' else ''} |")
    return lines + [""]


def zero_shot_lines(name: str, r: dict) -> list[str]:
    held = next((o.split("=", 1)[1] for o in r["meta"].get("overrides", [])
                 if o.startswith("data.held_out_classes=")), "?")
    metrics = ("zero_shot_top1", "gzsl_seen", "gzsl_unseen", "gzsl_harmonic", "gzsl_gamma", "gzsl_calibrated_seen",
               "gzsl_calibrated_unseen", "gzsl_calibrated_harmonic", "gzsl_ausuc")
    lines = [f"### Zero-shot: {name}, held out {held}", "",
             "Mean ± std over seeds (percent; `gamma` in logit units); `n/a`: not in the records.", "",
             "| variant | ontology | seeds | " + " | ".join(METRIC_NAMES[m] for m in metrics)
             + " | seen-class top-1 | kgnet - this, unseen-only top-1 |",
             "|---|---|---:|" + "---:|" * (len(metrics) + 2)]
    for variant, v in r["variants"].items():
        z = v["zero_shot"]
        minus = v.get("zero_shot_kgnet_minus", {}).get("zero_shot_top1")
        lines.append(f"| {variant} | {v.get('ontology') or '-'} | {v['top1']['n']} | "
                     + " | ".join(fmt_summary(z[m]) for m in metrics) + f" | {fmt_summary(v['top1'])} | "
                     + (fmt_diff(minus, n=True) if variant != "kgnet" else "") + " |")
    return lines + [""]


def extension_lines(summary: dict, suite: Suite, figure: str | None) -> list[str]:
    """The regimes that add classes to a trained model: means, paired differences and the checks of
    `benchmarks.extension`, and the novel-base curves."""
    lines = []
    for name, block in summary.get("extension", {}).items():
        regime = suite.regime(name)
        lines += [f"### Adding classes to a trained model: {name}", "",
                  (regime.description[0].upper() + regime.description[1:] + ". ") if regime else "",
                  "Per seed and variant a base run, then the seed's two classes added back to the trained model. "
                  "`novel`, `base`, `H`: accuracy on each group's test images, choosing among all 10 classes, at the "
                  "offset on the base classes' logits chosen on validation; AUSUC: the area under the novel-base "
                  "curve as the offset sweeps (threshold-free). In the tables above, an extend cell's top-1 is its "
                  "base run's, among its 8 classes.", "", "```text", block["summary"], "```", "",
                  "| check | measured | met |", "|---|---|---|",
                  *(f"| {c['check']} | {c['measured']} | **{WORDS[c['met']]}** |" for c in block["checks"]), ""]
        if figure:
            lines += [f"![novel-base curves]({figure})", ""]
    return lines


#: The ablation suite's metrics: validation top-1 everywhere, and on its zero-shot regime the
#: unseen-only top-1 and the calibrated GZSL harmonic mean.
ABLATION_METRICS = {False: ("top1",), True: ("top1", "zero_shot_top1", "gzsl_calibrated_harmonic")}


def ablation_lines(suite: Suite, records: dict[str, dict]) -> list[str]:
    """The concept head (`kgnet`) and the composed model against every other design and
    ablation, regime by regime and metric by metric: mean ± std over seeds, and the paired
    differences by seed with their 95% t intervals."""
    rows = _train_records(records)
    anchors = ("kgnet", "kgnet-composed")
    lines = ["Every number here is **validation** accuracy (`data.score_split=validation`: 200 images per class "
             "of the validation split, and of the held-out classes' share of it for zero-shot), never the test "
             "split. `a - x` is paired by seed (mean [95% t interval] n=pairs): positive means `a` is ahead.", ""]
    for regime in suite.regimes:
        variants = _ordered({r["cell"]["variant"] for r in rows if r["cell"]["regime"] == regime.name},
                            ("kgnet", "kgnet-composed", *OTHERS, "kgnet-composed-v1", "baseline"))
        if not variants:
            continue
        metrics = ABLATION_METRICS[regime.zero_shot]
        lines += [f"### {regime.name}: {regime.description}", ""]
        for metric in metrics:
            name = METRIC_NAMES.get(metric, metric)
            lines += [f"{name}:", "", f"| variant | what it is | {name} | "
                      + " | ".join(f"{a} - x" for a in anchors) + " |", "|---|---|---:|---:|---:|"]
            by_variant = {v: _by_seed(rows, regime.name, v, metric) for v in variants}
            for variant in variants:
                mine = by_variant[variant]
                diffs = [fmt_diff(paired_difference(by_variant[a], mine).to_dict(), n=True)
                         if a in by_variant and a != variant else "" for a in anchors]
                what = ROLE.get(variant, "") if variant != "kgnet-composed-v1" else (
                    "first attempt at kgnet-composed: node text neither centred nor projected without a bias")
                lines.append(f"| {variant} | {what} | {fmt_summary(describe([mine[s] for s in sorted(mine)]).to_dict())} | "
                             + " | ".join(diffs) + " |")
            lines.append("")
    return lines


# ---------------------------------------------------------------------------------------------
# the long suite (issue 24)


def long_checks(suite: Suite, summary: dict) -> list[dict[str, Any]]:
    """The long suite's goals: the default backbone's baseline reaches its floor, and per backbone
    kgnet and kgnet-prototype minus the baseline: a gain (95% interval above 0) and, at the
    least, no measurable loss (the interval reaches 0)."""
    checks: list[dict[str, Any]] = []
    regimes, plan = summary["regimes"], summary["planned"]
    for regime, floor in suite.baseline_floor:
        top1 = regimes.get(regime, {}).get("variants", {}).get("baseline", {}).get("top1")
        n = top1["n"] if top1 else 0
        measured = f"{fmt_summary(top1)} n={n} of {plan.get(regime, {}).get('baseline', 0)}" if n else "no cells yet"
        checks.append({"regime": regime, "check": "baseline top-1", "needs": f">= {floor:g}%",
                       "measured": measured, "met": (top1["mean"] >= floor) if n else None})
    for regime in suite.no_loss:
        variants = regimes.get(regime, {}).get("variants", {})
        for variant in ("kgnet", "kgnet-prototype"):
            entry, planned_n = variants.get(variant, {}).get("vs_baseline"), plan.get(regime, {}).get(variant, 0)
            checks.append(_difference_check(regime, f"{variant} - baseline: gain", entry, "95% CI above 0",
                                            planned_n, lambda pd: pd.low > 0))
            checks.append(_difference_check(regime, f"{variant} - baseline: no loss", entry,
                                            "95% CI reaches 0 or above", planned_n, lambda pd: pd.high >= 0))
    return checks


def long_lines(suite: Suite, summary: dict) -> list[str]:
    """The learning-rate choice on validation, then per backbone each variant's test top-1 and its
    paired difference from the baseline, the goals, and the wall time per cell."""
    regimes = summary["regimes"]
    lines = ["### Learning rate, chosen on validation", "",
             "Each candidate trains the baseline once (seed 0) with the budget below; its top-1 is on the "
             "6,000 validation images, never the test split. The higher one is the backbone's learning rate "
             "for every variant (`used`).", "",
             "| backbone | peak lr | validation top-1 | cell minutes | used |", "|---|---:|---:|---:|---|"]
    used = {(r.name[len("long-"):], o[len("train.lr="):]) for r in suite.regimes if r.name.startswith("long-")
            for o in r.overrides if o.startswith("train.lr=")}
    for regime in suite.regimes:
        if not regime.name.startswith("lval-"):
            continue
        base = regimes.get(regime.name, {}).get("variants", {}).get("baseline")
        backbone, lr = regime.name[len("lval-"):].rsplit("-lr", 1)
        minutes = f"{base['wall_seconds'] / 60:.0f}" if base else "pending"
        lines.append(f"| {backbone} | {lr} | {fmt_summary(base['top1']) if base else 'pending'} | {minutes} | "
                     f"{'yes' if (backbone, lr) in used else ''} |")
    lines += ["", "### Test top-1 per backbone", "",
              "Mean ± sd over seeds; `x - baseline` is paired by seed (mean [95% t interval] n=pairs). With 2 "
              "seeds the interval is the mean ± 12.7 x sd / sqrt(2), so only a gain as steady as the seeds "
              "can clear 0.", ""]
    for regime in suite.regimes:
        if not regime.name.startswith("long-") or regime.name not in regimes:
            continue
        lines += [f"**{regime.name}**: {regime.description}.", "",
                  "| variant | what it is | test top-1 | x - baseline | minutes per cell |", "|---|---|---:|---:|---:|"]
        for variant, v in regimes[regime.name]["variants"].items():
            minutes = ", ".join(f"{s / 60:.0f}" for s in v["cell_seconds"])
            lines.append(f"| {variant} | {ROLE.get(variant, '')} | {fmt_summary(v['top1'])} | "
                         f"{fmt_diff(v.get('vs_baseline'), n=True) if variant != 'baseline' else ''} | {minutes} |")
        lines.append("")
    lines += ["### Goals", "", *_check_table(long_checks(suite, summary))]
    lines.append(f"Cells' wall time: {summary['wall_seconds_total'] / 3600:.1f} h in all (two cells at a time with "
                 "`--jobs 2`, so the suite's end-to-end time is about half).")
    return lines + [""]


def plot_learning_curves(suite: Suite, records: dict[str, dict], path: Path) -> bool:
    """Validation top-1 per epoch, one panel per backbone, a line per variant and seed (from the
    `history` each training cell keeps)."""
    panels = [r.name for r in suite.regimes if r.name.startswith("long-")]
    rows = [r for r in _train_records(records) if r["cell"]["regime"] in panels and r.get("history")]
    if not rows:
        return False
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False)
    for ax, regime in zip(axes[0], panels):
        mine = [r for r in rows if r["cell"]["regime"] == regime]
        variants = _ordered({r["cell"]["variant"] for r in mine}, VARIANT_ORDER)
        for i, variant in enumerate(variants):
            for j, r in enumerate(sorted((r for r in mine if r["cell"]["variant"] == variant),
                                         key=lambda r: r["cell"]["seed"])):
                epochs = [h["epoch"] for h in r["history"]]
                ax.plot(epochs, [100 * h["val_top1"] for h in r["history"]], color=_colour(variant, i),
                        alpha=0.9 if j == 0 else 0.5, label=variant if j == 0 else None, **_style(variant))
        ax.set_title(regime.replace("long-", ""))
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation top-1 (%)")
        ax.grid(alpha=0.3)
        if mine:
            ax.legend(fontsize=8, loc="lower right")
        else:
            ax.text(0.5, 0.5, "no cells yet", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle("Learning curves (each line one seed)")
    fig.tight_layout()
    _save(fig, path)
    return True


def _section(suite: Suite, out: Path, png_dir: Path, png_prefix: str) -> tuple[str, list[Path]]:
    records = load_records(out)
    pngs: list[Path] = []
    title = f"## {suite.title}"
    if records and suite.name == "ablation":
        return "\n".join([title, "", *_notes(out), *ablation_lines(suite, records)]), pngs
    if records and suite.name == "long":
        return _long_section(suite, out, records, png_dir, png_prefix)
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
    lines.append("")
    v = summary.get("verdict")
    if v and (suite.gains or suite.no_loss):
        extending = {r.name for r in suite.regimes if r.extension}  # their checks: in their own section
        lines += ["### Verdict", "", f"Goal: {v['goal']}.", "", f"**{v['headline']}**", "", *v["bullets"], "",
                  *_check_table([c for c in v["checks"] if c["regime"] not in extending])]
    if v and v["zero_shot"]:
        lines += ["### Zero-shot goals", "",
                  "Mean over seeds [95% t interval of the mean]. The calibrated harmonic mean's aim is 60%.", "",
                  *_check_table(v["zero_shot"], variant=True)]
    lines += where_lines(suite, summary, out)
    regimes = summary["regimes"]
    curves = None
    if summary.get("extension"):
        from benchmarks import extension as protocol

        path = png_dir / f"{png_prefix}_extension_curves.png"
        if protocol.plot_curves([row for name in summary["extension"] for row in extension_rows(records, name)],
                                path):
            pngs.append(path)
            curves = f"{png_dir.name}/{path.name}"
    lines += extension_lines(summary, suite, curves)
    lines += differences_lines(summary, suite)
    for name, r in regimes.items():
        if r["meta"].get("zero_shot"):
            lines += zero_shot_lines(name, r)
    if regimes:
        lines += ["### Every variant, regime by regime", ""]
        for name, r in regimes.items():
            lines += regime_lines(name, r)
    if summary["cost"]:
        lines += cost_lines(summary["cost"])

    gains = dict(suite.gains)
    plots = [("accuracy_vs_size", "Top-1 vs training images per class", lambda p: plot_accuracy_vs_size(summary, p)),
             ("differences", "kgnet minus each variant vs training images per class",
              lambda p: plot_differences(summary, p, gains)),
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


#: The standalone cost runs (`benchmarks/model_cost.py`): the default kgnet, the other designs, and the
#: default's 60-round run with the ImageNet-1k graph.
MODEL_COST_FILES = (("kgnet (concept head, the default)", "model_cost.json"),
                    ("kgnet-composed (R-GCN + infusion + concept head)", "model_cost_composed.json"),
                    ("kgnet-prototype (R-GCN + infusion + prototype head)", "model_cost_prototype.json"),
                    ("kgnet (concept head, the default), 60 rounds, ImageNet-1k graph, 28 px",
                     "model_cost_60rounds_imagenet1k.json"))


def model_cost_section(results_dir: Path) -> list[str]:
    """The standalone cost runs as markdown: kgnet / baseline ratios per graph and input against
    issue 13's targets (empty when no run is there)."""
    from benchmarks.model_cost import DEFAULT_GRAPH, TARGETS, peak_mb

    runs = [(title, json.loads((results_dir / name).read_text())) for title, name in MODEL_COST_FILES
            if (results_dir / name).is_file()]
    if not runs:
        return []
    lines = ["## Cost of the default kgnet", "",
             "Written by `python benchmarks/model_cost.py` (`--variant kgnet-composed` or `kgnet-prototype` for the "
             "other designs), "
             "run alone: knowledge-injected model / baseline built from the same default config, in one process, "
             "interleaved rounds, median of the per-round ratios, batch 128. Targets (issues 13 and 20): train step and "
             "inference at most " + ", ".join(f"x{t['train_step_ratio']:.2f} / x{t['inference_ratio']:.2f} "
                                                   f"({name})" for name, t in TARGETS.items() if t)
             + "; the full WordNet graph is reported without one.", ""]
    for title, result in runs:
        m = result["machine"]
        lines += [f"### {title}", "",
                  f"{result['setup']['backbone']}, {m['device']}, {m['threads']} threads, load average "
                  f"{m['load_average_before'][0]:.2f} before and {m['load_average_after'][0]:.2f} after.", "",
                  "| graph | concepts in A (concept head) or nodes in view, of the graph's nodes | input | train step s (base / kgnet) | ratio "
                  "| inference s (base / kgnet) | ratio | peak memory MB (base / kgnet) | host syncs per step | target met |",
                  "|---|---:|---|---:|---:|---:|---:|---:|---:|---|"]
        graphs = {DEFAULT_GRAPH: {"inputs": result.get("inputs", {}), "graph": result.get("graph", {})},
                  **result.get("graphs", {})}
        for name, entry in graphs.items():
            target = TARGETS.get(name)
            for label, r in entry["inputs"].items():
                t, i, mem = r["train_step"], r["inference"], r.get("peak_memory_mb")
                ok = "reported" if target is None else (
                    "yes" if t["ratio"] <= target["train_step_ratio"] and i["ratio"] <= target["inference_ratio"]
                    else "**no**")
                memory = f"{peak_mb(mem['baseline']):.0f} / {peak_mb(mem['kgnet']):.0f}" if mem else "-"
                lines.append(f"| {name} | {r['graph_nodes']:,} of {entry['graph'].get('nodes', 0):,} | {label} "
                             f"| {t['baseline_median_s']:.3f} / {t['kgnet_median_s']:.3f} | x{t['ratio']:.3f} "
                             f"| {i['baseline_median_s']:.4f} / {i['kgnet_median_s']:.4f} | x{i['ratio']:.3f} "
                             f"| {memory} | {r['host_syncs']['kgnet']['forward_loss_backward']} | {ok} |")
        trainer = result.get("trainer_host_syncs")
        if trainer:
            lines += ["", f"Host syncs per step of the real training loop: baseline {trainer['baseline']['per_step']:.2f}, "
                          f"kgnet {trainer['kgnet']['per_step']:.2f} (the trainer reads its device-side totals every "
                          "20 steps; none inside a step)."]
        gpu = result.get("gpu")
        if isinstance(gpu, str):
            lines += ["", f"GPU section: {gpu} on the machine that ran it."]
        lines.append("")
    return lines


def engine_section(results_dir: Path) -> list[str]:
    """The training engine's own cost (`benchmarks/engine_overhead.py`) and its CUDA path
    (`benchmarks/gpu_path.py`) as markdown (empty when neither has run)."""
    overhead, gpu = results_dir / "engine_overhead.json", results_dir / "gpu" / "gpu_path.json"
    if not overhead.is_file() and not gpu.is_file():
        return []
    lines = ["## The training engine: its overhead and its CUDA path", ""]
    if overhead.is_file():
        o = json.loads(overhead.read_text())
        ratios = [r["ratio"] for r in o["rounds"]]
        lines += [f"`benchmarks/engine_overhead.py`: images per second of a plain PyTorch loop over those of "
                  f"`kgnet.train`'s baseline ({o['setup']['model']}; {o['setup']['train_images']:,} images: "
                  f"{o['setup']['data']}; batch {o['setup']['batch']}, {o['setup']['device']}, "
                  f"{o['setup']['threads']} threads), {len(ratios)} interleaved rounds: median "
                  f"x{o['ratio_median']:.3f} (rounds x{min(ratios):.2f} to x{max(ratios):.2f}); goal at most "
                  f"x{o['goal']:.2f}: {'**met**' if o['met'] else '**not met**'}.", ""]
    if gpu.is_file():
        g = json.loads(gpu.read_text())
        lines += [f"`benchmarks/gpu_path.py` on one {g['gpu']} (torch {g['torch']}): the trainer's own step "
                  f"(`TrainingStep`) in DistributedDataParallel over an {g['backend']} group of "
                  f"{g['world_size']} process, ResNet-18, {g['variant']} against the baseline, each timed alone in "
                  f"alternating blocks; ratio = {g['variant']} step time / baseline step time, goal at most "
                  f"x{g['ratio_goal']:.2f}." + (f" {g['note']}" if g.get("note") else ""), "",
                  "| input | setting | baseline img/s | kgnet img/s | step-time ratio | goal met |",
                  "|---|---|---:|---:|---:|---|"]
        for case, r in g["cases"].items():
            size, setting = case.rsplit(", ", 1)
            lines.append(f"| {size} | {setting} | {r['baseline']['images_per_second']:,.0f} "
                         f"| {r['kgnet']['images_per_second']:,.0f} | x{r['kgnet_over_baseline_step_time']:.3f} "
                         f"| {'yes' if r['met'] else '**no**'} |")
        lines.append("")
    run = results_dir / "gpu" / "default_run_cuda_amp_compile.json"
    if run.is_file():
        r = json.loads(run.read_text())
        lines += [f"The whole CLI on that GPU, `{r['command']}` ({r['what']}):", "", "```", *r["comparison"], "```", ""]
    return lines


def _rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def _long_section(suite: Suite, out: Path, records: dict[str, dict], png_dir: Path,
                  png_prefix: str) -> tuple[str, list[Path]]:
    summary = aggregate(suite, records)
    missing = summary["cells_missing"]
    lines = [f"## {suite.title}", "", *_notes(out),
             f"Results: `{_rel(out)}` ({summary['cells_finished']} of {summary['cells_defined']} cells finished).", "",
             *([f"Pending: {len(missing)} cells ({', '.join(missing)}).", ""] if missing else []),
             "Machine: " + "; ".join(f"{m['machine']} ({m['cells']} cells)" for m in summary["machines"]) + ".", "",
             *long_lines(suite, summary)]
    pngs = []
    path = png_dir / f"{png_prefix}_learning_curves.png"
    if plot_learning_curves(suite, records, path):
        pngs.append(path)
        lines += ["### Plots", "", f"![Learning curves]({png_dir.name}/{path.name})", ""]
    return "\n".join(lines).rstrip() + "\n", pngs


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
    parts += model_cost_section(REPO / "benchmarks" / "results")
    parts += engine_section(REPO / "benchmarks" / "results")
    for stale in png_dir.glob("*.png"):  # plots of a previous report that no longer apply
        if stale not in written and any(stale.name.startswith(f"{s.name}_") for s, _ in sections):
            stale.unlink()
    path = report_dir / "benchmarks.md"
    write_text_atomic(path, "\n".join(parts).rstrip() + "\n")
    return path
