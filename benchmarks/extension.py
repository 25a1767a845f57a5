"""Adding classes to a trained model by editing its ontology (issue 34): k = 0, no training after the edit.

Per (seed, novel pair): a base run trains on the 8 other Fashion-MNIST classes (`data.classes`) with
the garments ontology *without* the pair (their class nodes, restrictions, and the concept nodes
only they use are removed: `kgnet.kg.edit.without_classes`), as a catalogue before two products were added.
Each trained variant is then extended with the full ontology (`kgnet.engine.extend.extend_release`,
the code behind `kgnet.predict --ontology`) and scored among all 10 classes on the test split:
novel and base accuracy and their harmonic mean H at the seen-offset constant chosen on
validation (`best_gamma`), and the area under the novel-base curve (AUSUC, Chao et al. ECCV 2016),
threshold-free. The base run's own base accuracy (8 classes) is scored too.

With k > 0 in `--shots` (0, the default, is the extension above), each variant's base run is
also the start (`model.init_from`) of a run that adds the pair with k images each beside the base
classes' images (class-balanced), for 10% of the base run's optimiser steps; scored the same way
(the baseline too: its new classifier rows start at random).

    python -m benchmarks.extension --out /tmp/ext34 --pairs Sandal,Bag Pullover,"Ankle boot" --seeds 0 1 \
        --shots 0 1 5 --set data.samples_per_class=100 --set train.epochs=10 --set train.lr=2e-3

Writes OUT/rows.jsonl (one line per seed, pair, variant and k) and prints means and paired
intervals (`benchmarks.stats`); `--summary` prints them again.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import rdflib

from kgnet.kg.edit import without_classes

FULL = Path(__file__).resolve().parents[1] / "kg" / "fashion_mnist_garments.ttl"
VARIANTS = ("baseline", "kgnet", "kgnet-inductive", "kgnet-inductive-permuted")
#: Training settings of the runs that add the classes with k images: 10% of the base run's 250 steps
#: (the run's own end-of-run scoring is kept small: the rows score every model on the whole splits).
TUNE = ["train.epochs=1", "train.min_steps=25", "train.analysis=none", "data.test_per_class=10"]


def _beyond_protocol(tuning: list[str]) -> list[str]:
    """The settings of a k-image run beyond the protocol's `TUNE` (what a tried way of training changed)."""
    return [t for t in tuning if t not in TUNE]


def _logits(model, dataset):
    import torch

    from kgnet.engine.scoring import predict

    out = predict(model, dataset, device=torch.device("cpu"), embeddings=False)
    return out.logits, out.labels


def _scores(logits, labels, val_logits, val_labels, novel: list[int], base: list[int]) -> dict:
    from kgnet.metrics.classification import (area_under_seen_unseen_curve, best_gamma, generalized_few_shot,
                                              restricted_top1, seen_offset)

    gamma = best_gamma(val_logits, val_labels, base, novel)
    at = generalized_few_shot(seen_offset(logits, base, gamma), labels, novel, base)
    raw = generalized_few_shot(logits, labels, novel, base)
    val = generalized_few_shot(seen_offset(val_logits, base, gamma), val_labels, novel, base)
    return {"gamma": gamma, "novel": at["novel_top1"], "base": at["base_top1"], "H": at["gfsl_harmonic"],
            "novel_uncalibrated": raw["novel_top1"], "base_uncalibrated": raw["base_top1"],
            "base_among_base": restricted_top1(logits, labels, base),  # forgetting, apart from the trade-off
            "ausuc": area_under_seen_unseen_curve(logits, labels, base, novel),
            # validation, where designs are chosen (the test split above is reported, never chosen on)
            "val_H": val["gfsl_harmonic"], "val_novel": val["novel_top1"], "val_base": val["base_top1"],
            "val_base_among_base": restricted_top1(val_logits, val_labels, base),
            "val_ausuc": area_under_seen_unseen_curve(val_logits, val_labels, base, novel),
            "curve": _curve(logits, labels, base, novel)}


def _curve(logits, labels, base: list[int], novel: list[int], points: int = 60) -> list[list[float]]:
    """The test split's novel-base accuracy curve as the offset sweeps, at most `points` (novel, base) pairs."""
    from kgnet.metrics.classification import seen_unseen_curve

    _, b, n = seen_unseen_curve(logits, labels, base, novel)
    step = max(1, len(b) // points)
    keep = list(range(0, len(b), step)) + [len(b) - 1]
    return [[round(float(n[i]), 4), round(float(b[i]), 4)] for i in keep]


def _train(run: Path, sets: list[str]) -> dict:
    """`python -m kgnet.train` into `run` (skipped when it finished before); its metrics.json."""
    from kgnet.train import main as train

    if not (run / "metrics.json").exists():
        code = train(["--out", str(run), *[a for s in sets for a in ("--set", s)]])
        if code != 0:
            raise SystemExit(f"{run} failed ({code})")
    return json.loads((run / "metrics.json").read_text())


def _own_top1(release, dataset, class_names: list[str]) -> float:
    """The base run's top-1 among its own classes on their images of `dataset` (labelled by
    `class_names`, all ten): what an extension should keep."""
    import torch

    logits, labels = _logits(release.model, dataset)
    own = torch.tensor([release.class_names.index(c) if c in release.class_names else -1 for c in class_names])
    mine = own[labels]
    keep = mine >= 0
    return float((logits[keep].argmax(1) == mine[keep]).float().mean())


def _row(model, bundle, pair: list[str], **fields) -> dict:
    novel = [bundle.class_names.index(c) for c in pair]
    base = [i for i in range(len(bundle.class_names)) if i not in novel]
    logits, labels = _logits(model, bundle.test)
    val_logits, val_labels = _logits(model, bundle.val)
    row = {**fields, "pair": pair, **_scores(logits, labels, val_logits, val_labels, novel, base)}
    print(json.dumps(row), flush=True)
    return row


def run_one(out: Path, seed: int, pair: list[str], variants: list[str], overrides: list[str],
            shots: list[int], tuning: list[str]) -> list[dict]:
    """The base run of (seed, pair), its extension at k = 0 (variants with an ontology) and its
    fine-tuned runs at each k > 0 (every variant, the baseline too)."""
    import dataclasses

    from kgnet.config import load_config
    from kgnet.data.builder import build_datasets
    from kgnet.data.cards import load_card
    from kgnet.engine.extend import extend_release
    from kgnet.models import reads_ontology
    from kgnet.release import load_release

    classes = load_card("fashion_mnist").classes
    base_classes = [c for c in classes if c not in pair]
    folder = out / (f"seed{seed}-" + "-".join(c.replace(" ", "_").replace("/", "_") for c in pair))
    folder.mkdir(parents=True, exist_ok=True)
    ontology = folder / "base.ttl"
    without_classes(rdflib.Graph().parse(FULL), pair, FULL).serialize(ontology, format="turtle")
    run = folder / "base"
    base_metrics = _train(run, [f"seed={seed}", f"variants=[{','.join(variants)}]", f"knowledge.ontology={ontology}",
                                f"data.classes=[{','.join(base_classes)}]", *overrides])
    data = dataclasses.replace(load_config(run / "config.yaml").data, classes=None)
    rows = []
    releases = {variant: load_release(run / variant) for variant in variants}
    bundle = build_datasets(data, seed=seed, augment=False,  # the variants of a run share their preprocessing
                            preprocessing=releases[variants[0]].preprocessing)
    for variant, release in releases.items():
        common = {"seed": seed, "variant": variant, "base_run_top1": base_metrics[variant]["top1"],
                  "base_run_val_top1": _own_top1(release, bundle.val, bundle.class_names),
                  "base_train_seconds": base_metrics[variant]["train_seconds"]}
        if 0 in shots and reads_ontology(release.config, release.variant):
            started = time.perf_counter()
            extended = extend_release(release, FULL, bundle.class_names)
            rows.append(_row(extended.model, bundle, pair, k=0, **common,
                             extend_seconds=time.perf_counter() - started))
        for k in [k for k in shots if k]:
            tuned = folder / "-".join([f"k{k}", variant, *_beyond_protocol(tuning)]).replace("/", "_")
            kept = [o for o in overrides if not o.startswith("train.") or o.startswith("train.device=")]
            seconds = _train(tuned, [f"seed={seed}", f"variants=[{variant}]", f"model.init_from={run}",
                                     f"data.novel_classes=[{','.join(pair)}]", f"data.novel_samples_per_class={k}",
                                     *kept, *tuning])[variant]["train_seconds"]
            model = load_release(tuned / variant).model
            rows.append(_row(model, bundle, pair, k=k, **common, tune_seconds=seconds, tune=tuning))
    return rows


def summary(rows: list[dict]) -> str:
    """Means per (k, variant) and the paired differences the issue asks about."""
    from benchmarks.stats import paired_difference

    rows = list({(r["seed"], tuple(r["pair"]), r["variant"], r["k"]): r for r in rows}.values())  # the last of each
    lines = []
    for k in sorted({r["k"] for r in rows}):
        at = [r for r in rows if r["k"] == k]
        by = {}
        for r in at:
            by.setdefault(r["variant"], {})[(r["seed"], tuple(r["pair"]))] = r
        lines.append(f"k = {k}: mean over {max(len(v) for v in by.values())} (seed, pair) runs")
        for variant, runs in by.items():
            mean = {m: sum(r[m] for r in runs.values()) / len(runs) for m in ("novel", "base", "H", "ausuc")}
            kept = [r["base_among_base"] - r["base_run_top1"] for r in runs.values() if "base_among_base" in r]
            forgot = f"  base among base - base run {100 * sum(kept) / len(kept):+5.1f} (n={len(kept)})" if kept else ""
            lines.append(f"  {variant:<26} novel {100 * mean['novel']:5.1f}  base {100 * mean['base']:5.1f}  "
                         f"H {100 * mean['H']:5.1f}  AUSUC {mean['ausuc']:.3f}  (n={len(runs)}){forgot}")
        for a, b in (("kgnet-inductive", "kgnet-inductive-permuted"), ("kgnet", "kgnet-permuted"),
                     ("kgnet-inductive", "kgnet"), ("kgnet-inductive", "baseline"), ("kgnet", "baseline")):
            if a in by and b in by:
                for m in ("novel", "H", "ausuc"):
                    d = paired_difference({key: r[m] for key, r in by[a].items()}, {key: r[m] for key, r in by[b].items()})
                    if d.n and d.low is not None:
                        scale = 1 if m == "ausuc" else 100
                        lines.append(f"  {a} - {b}: {m} {scale * d.mean:+.3f} [{scale * d.low:+.3f}, "
                                     f"{scale * d.high:+.3f}] (n={d.n})")
    return "\n".join(lines)


def tuning_lines(rows: list[dict]) -> list[str]:
    """How each way of training the k-image runs did on validation (where one is chosen): per
    (tuning, variant, k), the mean calibrated H, AUSUC and the base classes' change among
    themselves against the base run (forgetting), over the (seed, pair) runs."""
    lines = ["| training of the k-image run | variant | k | val H | val AUSUC | base among base - base run | runs |",
             "|---|---|---|---|---|---|---|"]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["k"] and "val_H" in r:
            tune = " ".join(_beyond_protocol(r.get("tune", TUNE))) or "default"
            groups.setdefault((tune, r["variant"], r["k"]), []).append(r)
    for (tune, variant, k), runs in sorted(groups.items(), key=lambda item: (item[0][2], item[0][1], item[0][0])):
        mean = {m: sum(r[m] for r in runs) / len(runs)
                for m in ("val_H", "val_ausuc", "val_base_among_base", "base_run_val_top1")}
        lines.append(f"| {tune} | {variant} | {k} | {100 * mean['val_H']:.1f} | {mean['val_ausuc']:.3f} | "
                     f"{100 * (mean['val_base_among_base'] - mean['base_run_val_top1']):+.1f} | {len(runs)} |")
    return lines


def must_show(rows: list[dict]) -> list[tuple[str, str, bool | None]]:
    """The issue's must-show lines: (what, measured, met?), for kgnet-inductive (the design the
    issue names) and for kgnet (the shipped default), against the baseline and against each of
    their controls in the rows (the registry's `of`): the permuted control by the issue's +20
    points at k = 0, every control below the model (interval above 0)."""
    from benchmarks.stats import paired_difference
    from kgnet.variants import VARIANTS as REGISTERED

    def controls(model: str) -> list[str]:
        return sorted({r["variant"] for r in rows if REGISTERED[r["variant"]].role == "control"
                       and REGISTERED[r["variant"]].of == model})

    def runs(k: int, variant: str, metric: str) -> dict:
        return {(r["seed"], tuple(r["pair"])): r[metric] for r in rows
                if r["k"] == k and r["variant"] == variant and metric in r}

    def mean(values) -> float | None:
        values = list(values)
        return sum(values) / len(values) if values else None

    def interval(k, a, b, metric, scale=100.0):
        d = paired_difference(runs(k, a, metric), runs(k, b, metric))
        if not d.n or d.low is None:
            return f"n={d.n}: no interval", None, None
        return (f"{scale * d.mean:+.3g} [{scale * d.low:+.3g}, {scale * d.high:+.3g}] (n={d.n})", d.mean, d.low)

    out = []
    for model in ("kgnet-inductive", "kgnet"):
        novel, h = mean(runs(0, model, "novel").values()), mean(runs(0, model, "H").values())
        if novel is not None:
            out.append((f"k=0: {model} novel accuracy among all 10 >= 60%", f"{100 * novel:.1f}%", novel >= 0.6))
            out.append((f"k=0: {model} calibrated H >= 50%", f"{100 * h:.1f}%", h >= 0.5))
    against = [("kgnet-inductive", "kgnet", 10)] + [(model, control, 20 if control.endswith("-permuted") else 0)
                                                     for model in ("kgnet-inductive", "kgnet")
                                                     for control in controls(model)]
    for model, other, points in against:
        text, m, low = interval(0, model, other, "novel")
        if m is not None:
            out.append((f"k=0: novel, {model} - {other} " + (f">= +{points} points, " if points else "")
                        + "interval above 0", text, 100 * m >= points and low > 0))
    for k in sorted({r["k"] for r in rows} - {0}):
        for model in ("kgnet-inductive", "kgnet"):
            for other in ("baseline", *controls(model)):
                text, m, low = interval(k, model, other, "ausuc", 1.0)
                if m is not None:
                    out.append((f"k={k}: AUSUC, {model} - {other} > 0 (interval above 0)", text, low > 0))
            base, before = runs(k, model, "base"), runs(k, model, "base_run_top1")
            if base:
                drop = mean(100 * (before[key] - base[key]) for key in base)
                out.append((f"k={k}: {model} base accuracy after the extension at most 1 point below the base run's "
                            f"(among all 10 at the chosen offset, against the base run's among its 8; n={len(base)})",
                            f"{drop:+.1f} points lower", drop <= 1))
            kept = runs(k, model, "base_among_base")
            if kept:
                drop = mean(100 * (before[key] - kept[key]) for key in kept)
                out.append((f"k={k}: {model} base accuracy among the 8 base classes after the extension at most 1 "
                            f"point below the base run's (forgetting alone; n={len(kept)})",
                            f"{drop:+.1f} points lower", drop <= 1))
            cost = [r["tune_seconds"] / r["base_train_seconds"] for r in rows
                    if r["k"] == k and r["variant"] == model and r.get("tune_seconds")]
            if cost:
                out.append((f"k={k}: {model}: adding the classes costs <= 10% of the base run's training time "
                            "(train_seconds of metrics.json)", f"{100 * mean(cost):.1f}% (mean of {len(cost)})",
                            mean(cost) <= 0.1))
    return out


#: The all-classes comparison (issue 34: the default is the user's design if it is within 1 point of
#: the concept head at 1 and 5 images per class on validation, >= 10 paired seeds): cells of
#: `python -m benchmarks.run --suite ablation --only "^val-shot(1|5)-kgnet(-inductive)?-s"`.
ALL_CLASSES = Path(__file__).resolve().parent / "results" / "inductive" / "cells"
#: Rows of the ways of training the k-image runs that were tried (`tune` holds each one's settings).
TUNING = Path(__file__).resolve().parent / "results" / "extension" / "tuning.jsonl"


def all_classes_lines(cells: Path = ALL_CLASSES) -> list[str]:
    """kgnet-inductive - kgnet top-1 on validation, paired by seed, per regime."""
    from benchmarks.stats import paired_difference

    records = [json.loads(p.read_text()) for p in sorted(cells.glob("*.json"))]
    lines = []
    for regime in sorted({r["cell"]["regime"] for r in records}):
        top1 = {v: {r["cell"]["seed"]: r["metrics"]["top1"] for r in records
                    if r["cell"]["regime"] == regime and r["cell"]["variant"] == v} for v in ("kgnet", "kgnet-inductive")}
        d = paired_difference(top1["kgnet-inductive"], top1["kgnet"])
        if d.low is None:
            continue
        means = {v: 100 * sum(t.values()) / len(t) for v, t in top1.items()}
        lines.append(f"| {regime} | {means['kgnet']:.2f} | {means['kgnet-inductive']:.2f} | {100 * d.mean:+.2f} "
                     f"[{100 * d.low:+.2f}, {100 * d.high:+.2f}] | {d.n} |")
    return lines


def write_report(rows: list[dict], path: Path, figure: Path) -> None:
    """docs/extension.md (and its figure) from the rows: the protocol, the means, the checks."""
    rows = list({(r["seed"], tuple(r["pair"]), r["variant"], r["k"]): r for r in rows}.values())
    lines = ["# Adding classes to a trained model (issue 34)", "",
             "Generated by `python -m benchmarks.extension --summary --report docs/extension.md` from "
             "`benchmarks/results/extension/rows.jsonl`; every number below is from those rows.", "",
             __doc__.split("\n\n")[1].replace("\n", " "), "", "```text", summary(rows), "```", "",
             "| must show | measured | met |", "|---|---|---|"]
    for what, measured, met in must_show(rows):
        lines.append(f"| {what} | {measured} | {'yes' if met else 'no' if met is False else 'see note'} |")
    if plot_curves(rows, figure):
        lines += ["", f"![novel-base curves]({figure.relative_to(path.parent)})", "",
                  "Each line is one (seed, pair) run: novel against base accuracy among all 10 classes as the "
                  "offset subtracted from the base classes' logits sweeps (test split). The area under it is AUSUC."]
    tuned = [json.loads(line) for line in TUNING.read_text().splitlines() if line.strip()] if TUNING.exists() else []
    if tuned:
        lines += ["", "## How the k-image runs train, chosen on validation", "",
                  f"Rows in `{TUNING.relative_to(TUNING.parents[3])}`: k = 5, each way of training the run that adds "
                  "the pair, from the same base runs (seed 1). Validation only: calibrated H and AUSUC among all 10, "
                  "and the base classes' top-1 among themselves minus the base run's (what the added classes cost "
                  "the trained ones, apart from the novel-base trade-off).", "", *tuning_lines(tuned)]
    table = all_classes_lines()
    if table:
        lines += ["", "## All classes: kgnet-inductive against the concept head", "",
                  "Top-1 (%) on 2,000 validation images, 10 paired seeds, the ablation suite's regimes (cells in "
                  "`benchmarks/results/inductive/cells`).", "",
                  "| regime | kgnet | kgnet-inductive | inductive - kgnet [95% CI] | seeds |", "|---|---|---|---|---|",
                  *table]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def plot_curves(rows: list[dict], path: Path) -> bool:
    """One panel per k: every run's novel-base curve, coloured by variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kgnet.variants import VARIANTS as REGISTERED

    ks = sorted({r["k"] for r in rows if r.get("curve")})
    if not ks:
        return False
    fig, axes = plt.subplots(1, len(ks), figsize=(4.2 * len(ks), 4), squeeze=False)
    for ax, k in zip(axes[0], ks):
        seen = set()
        for r in rows:
            if r["k"] != k or not r.get("curve"):
                continue
            novel, base = zip(*r["curve"])
            label = None if r["variant"] in seen else r["variant"]
            seen.add(r["variant"])
            ax.plot(novel, base, color=REGISTERED[r["variant"]].colour, alpha=0.8, linewidth=1.3, label=label)
        ax.set(title=f"k = {k} images per new class", xlabel="novel accuracy (2 new classes)",
               ylabel="base accuracy (8 trained classes)", xlim=(0, 1), ylim=(0, 1))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--pairs", nargs="+", default=["Sandal,Bag", "Pullover,Ankle boot", "Trouser,Shirt"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--shots", nargs="*", type=int, default=[0],
                        help="0: the extension without training; k > 0: fine-tuned runs from the base run")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="settings of the base runs (e.g. train.epochs=10)")
    parser.add_argument("--tune", action="append", default=list(TUNE),
                        help="training settings of the runs that add the classes with k images (default: 10%% "
                        "of the base run's 250 steps)")
    parser.add_argument("--summary", action="store_true", help="print the summary of OUT/rows.jsonl and exit")
    parser.add_argument("--report", type=Path, help="also write this markdown report (and its figure beside it)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows_file = args.out / "rows.jsonl"
    if not args.summary:
        with rows_file.open("a") as sink:
            for seed in args.seeds:
                for pair in args.pairs:
                    for row in run_one(args.out, seed, pair.split(","), args.variants, args.overrides, args.shots,
                                       args.tune):
                        sink.write(json.dumps(row) + "\n")
                        sink.flush()
    rows = [json.loads(line) for line in rows_file.read_text().splitlines() if line.strip()]
    print(summary(rows))
    if args.report is not None:
        write_report(rows, args.report, args.report.parent / "figures" / "extension_curves.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
