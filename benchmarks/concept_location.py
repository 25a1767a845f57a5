"""Where does the concept head find its concepts? Training candidates for issue 36, on validation.

The default kgnet's exact class map puts most of its energy on the black background of
Fashion-MNIST (test: 38.1% on the garment, a flat map 50%). This trains the default run (baseline
and kgnet, today's settings otherwise) with each candidate training augmentation of Fashion-MNIST
(`kgnet.data.builder.AUGMENT`, set here for the run) over seeds, and measures on the validation
split only (the test split is never read):

- `energy`: the share of a map's positive energy on the garment (its non-zero pixels, the
  Score-CAM pointing measure, `kgnet.explain.pointing`): kgnet's exact class map (the map the
  gallery shows) and the baseline's Grad-CAM, for each model's own predicted class, paired by
  image, with a 95% interval of kgnet - baseline;
- `pointing`: over kgnet's correctly classified images, the share whose top contributing
  concept was found on a token whose 4x4 pixel block is at least half garment;
- `top1`: each variant's top-1 on the whole validation split.

Candidates: random erasing and background noise (`kgnet.data.augment.paint_noise`), a
penalty on concepts that fire on many tokens (`spread_penalty`), and top-k mean pooling of the
token scores (`top_k_pooling`); the last two are patched into the concept head for the
benchmark's own runs. A candidate that changes only the concept head reuses the default run's
baseline of the same seed (the baseline has no concepts and trains the same way).

    python benchmarks/concept_location.py --seeds 0 1 2 --images 1000
    python benchmarks/concept_location.py --candidates default erase --seeds 0 1 2 3 4

Runs are kept under `--work` (default `runs/concept_location`); a rerun reuses a finished one.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.stats import describe, paired_difference  # noqa: E402
from kgnet.data import builder  # noqa: E402
from kgnet.data.augment import Augment  # noqa: E402

@dataclass(frozen=True)
class Candidate:
    """A way to train the default run: Fashion-MNIST's whole training augmentation, the weight
    of a penalty on concepts that fire everywhere (`spread_penalty`; 0 = none), the knowledge
    variant measured (`kgnet-composed`: the R-GCN and the infusion too), and how many of its
    best tokens a concept's activation averages (`top_k_pooling`; 1 = today's max)."""

    augment: Augment
    spread: float = 0.0
    variant: str = "kgnet"
    top_k: int = 1


#: Today's recipe and the candidates.
CANDIDATES: dict[str, Candidate] = {
    "default": Candidate(Augment(pad=2, flip=True)),
    "erase": Candidate(Augment(pad=2, flip=True, erase=0.5)),
    "background": Candidate(Augment(pad=2, flip=True, background_noise=64)),
    "erase+background": Candidate(Augment(pad=2, flip=True, erase=0.5, background_noise=64)),
    "spread1": Candidate(Augment(pad=2, flip=True), spread=1.0),
    "spread4": Candidate(Augment(pad=2, flip=True), spread=4.0),
    "composed": Candidate(Augment(pad=2, flip=True), variant="kgnet-composed"),
    "top4": Candidate(Augment(pad=2, flip=True), top_k=4),
}


def spread_penalty(scores: torch.Tensor) -> torch.Tensor:
    """Mean over images, concepts and tokens of the positive token scores [B, T, M]: a concept
    that fires on many tokens (a uniform background's) costs more than one found on one part."""
    return scores.clamp(min=0).mean()


@contextlib.contextmanager
def penalised(weight: float):
    """The concept head trains with `weight` times `spread_penalty` added to its loss (this
    process only, for the runs trained inside the context)."""
    from kgnet.models.heads.concept import ConceptHead

    if not weight:
        yield
        return
    forward, loss = ConceptHead.forward, ConceptHead.loss

    def forward_keeping(self, tokens, nodes=None):
        if self.training:
            self._spread = spread_penalty(self._used_scores(tokens, nodes))
        return forward(self, tokens, nodes)

    def loss_with_spread(self, out, cross_entropy, targets, *, seen, epoch):
        total, aux = loss(self, out, cross_entropy, targets, seen=seen, epoch=epoch)
        return total + weight * self._spread, aux

    ConceptHead.forward, ConceptHead.loss = forward_keeping, loss_with_spread
    try:
        yield
    finally:
        ConceptHead.forward, ConceptHead.loss = forward, loss
#: A token counts as on the garment when at least this share of its pixel block is garment.
ON_OBJECT = 0.5


@contextlib.contextmanager
def top_k_pooling(k: int):
    """The concept head's activation of a concept is the mean of its `k` best token scores
    instead of the best one (this process only; training and measuring). The class map stays
    exact: each of the k tokens gets 1/k of the concept's contribution."""
    from kgnet.models.heads import HeadOutput
    from kgnet.models.heads.concept import ConceptHead

    if k == 1:
        yield
        return
    saved = ConceptHead.forward, ConceptHead.concept_activations, ConceptHead.token_contributions

    def pool(scores):
        return scores.topk(min(k, scores.shape[1]), dim=1).values.mean(1)

    def forward(self, tokens, nodes=None):
        c_used = pool(self._used_scores(tokens, nodes))
        concepts = self._all_columns(c_used)
        return HeadOutput(self.scale() * self._class_scores(c_used), concepts, concepts=concepts)

    def concept_activations(self, tokens, nodes=None):
        scores = self.token_scores(tokens, nodes)
        return pool(scores), scores

    def token_contributions(self, scores):
        best = scores.topk(min(k, scores.shape[1]), dim=1).indices  # [B, k, M]
        found = torch.zeros_like(scores).scatter_(1, best, 1.0 / best.shape[1])
        return self.scale() * (found * scores) @ self.weights.T

    ConceptHead.forward, ConceptHead.concept_activations, ConceptHead.token_contributions = (
        forward, concept_activations, token_contributions)
    try:
        yield
    finally:
        ConceptHead.forward, ConceptHead.concept_activations, ConceptHead.token_contributions = saved


def train(folder: Path, candidate: Candidate, seed: int, variants: tuple[str, ...] = ("baseline", "kgnet")) -> Path:
    """The default run of `variants` at `seed` trained as `candidate` says, unless finished."""
    from kgnet.train import main

    if not (folder / "metrics.json").exists():
        saved = builder.AUGMENT["fashion_mnist"]
        builder.AUGMENT["fashion_mnist"] = candidate.augment
        try:
            with contextlib.redirect_stdout(io.StringIO()), penalised(candidate.spread):
                resume = (folder / "config.yaml").exists()  # a killed run continues
                code = main(["--resume", str(folder)] if resume else
                            ["--out", str(folder), "--set", f"seed={seed}", "--set", "data.test_per_class=1",
                             "--set", f"variants=[{','.join(variants)}]"])
        finally:
            builder.AUGMENT["fashion_mnist"] = saved
        if code != 0:
            raise SystemExit(f"training {folder} failed ({code})")
    return folder


def garment_share(masks: np.ndarray, grid: tuple[int, int]) -> torch.Tensor:
    """[B, T]: the share of garment pixels in each token's block of the image."""
    return F.adaptive_avg_pool2d(torch.as_tensor(masks, dtype=torch.float32)[:, None], grid).flatten(1)


def _interval(summary) -> dict[str, float]:
    """A `benchmarks.stats` summary or paired difference as mean, 95% t interval and n."""
    half = summary.half_width
    return {"mean": summary.mean, "low": summary.mean - half, "high": summary.mean + half, "n": summary.n}


#: What each candidate's summary describes over seeds, in percent: name -> value of one run.
MEASURES = {
    "kgnet_top1": lambda r: r["top1"]["kgnet"],
    "baseline_top1": lambda r: r["top1"]["baseline"],
    "energy_kgnet": lambda r: r["energy"]["kgnet_class_map"],
    "energy_difference": lambda r: r["energy"]["difference"]["mean"],
    "pointing": lambda r: r["pointing"],
    "attention_energy": lambda r: r["attention"]["energy"],
    "attention_pointing_all": lambda r: r["attention"]["pointing_all"],
}
#: ... and, paired by seed, its change from today's default.
AGAINST_DEFAULT = {"energy_minus_default": "energy_kgnet", "top1_minus_default": "kgnet_top1"}


def summarise(runs: dict[str, dict]) -> dict[str, dict]:
    """Per candidate with runs on at least 2 seeds: each measure's mean and interval over seeds,
    and the change from the default paired by seed."""
    by_seed = {}
    for key, run in runs.items():
        name, seed = key.split("/seed")
        by_seed.setdefault(name, {})[int(seed)] = run
    summary = {}
    for name, rows in by_seed.items():
        if len(rows) < 2:
            continue
        attention = all("attention" in run for run in rows.values())  # a model with an infusion
        values = {measure: {seed: 100 * read(run) for seed, run in rows.items()}
                  for measure, read in MEASURES.items() if attention or not measure.startswith("attention")}
        summary[name] = {"seeds": sorted(rows), **{m: _interval(describe(list(v.values()))) for m, v in values.items()}}
        if name != "default" and "default" in by_seed:
            for paired, measure in AGAINST_DEFAULT.items():
                default = {seed: 100 * MEASURES[measure](run) for seed, run in by_seed["default"].items()}
                difference = paired_difference(values[measure], default)
                if difference.has_ci:
                    summary[name][paired] = _interval(difference)
    return summary


def measure(run: Path, images: int, baseline_run: Path, variant: str = "kgnet") -> dict:
    """Energy on the garment, pointing and validation top-1 of `variant` of a trained default
    run (its baseline in `baseline_run`); with an infusion, its attention map's too."""
    from kgnet.config import load_config
    from kgnet.data.builder import build_datasets
    from kgnet.engine.scoring import predict
    from kgnet.explain.contributions import class_map_images, read_concepts
    from kgnet.explain.gradcam import gradcam
    from kgnet.explain.pointing import energy_on_object, object_masks, paired_difference
    from kgnet.metrics.embedding import stratified_sample
    from kgnet.release import load_release

    kgnet, baseline = load_release(run / variant), load_release(baseline_run / "baseline")
    config = load_config(run / "config.yaml")
    bundle = build_datasets(config.data, seed=config.seed, download=False, augment=False,
                            preprocessing=kgnet.preprocessing)
    val = bundle.val
    device = torch.device("cpu")
    top1 = {}
    for name, release in (("kgnet", kgnet), ("baseline", baseline)):
        predictions = predict(release.model, val, device=device, embeddings=False)
        top1[name] = float((predictions.logits.argmax(1) == predictions.labels).float().mean())
    labels = np.asarray(val.labels)
    chosen = stratified_sample(labels, images, seed=0)
    x = torch.stack([val[int(i)][0] for i in chosen])
    y = torch.as_tensor(labels[chosen])
    pixels = kgnet.preprocessing.unnormalise(x)[:, 0].numpy()
    masks = object_masks(pixels)
    reading = read_concepts(kgnet.model.eval(), x)
    predicted = reading.logits.argmax(1)
    class_map = class_map_images(reading, predicted.tolist(), tuple(x.shape[-2:]), mode="bilinear")
    baseline.model.eval()
    with torch.no_grad():
        base_predicted = torch.cat([baseline.model(x[i:i + 64]).logits.argmax(1) for i in range(0, len(x), 64)])
    cam = gradcam(baseline.model, x, base_predicted.tolist())
    energy_kgnet, energy_base = energy_on_object(class_map, masks), energy_on_object(cam, masks)
    # pointing: the token of the predicted class's top contributing concept, on the garment?
    head = kgnet.model.head
    contributions = head.contributions(reading.activations)[torch.arange(len(x)), predicted]  # [B, M]
    top = contributions.argmax(1)
    token = reading.scores[torch.arange(len(x)), :, top].argmax(1)
    blocks = garment_share(masks, reading.grid)
    on = blocks[torch.arange(len(x)), token] >= ON_OBJECT
    correct = predicted == y
    attention = infusion_attention(kgnet.model, x, top, masks, reading.grid)
    return {"variant": variant, **({"attention": attention} if attention else {}), "top1": top1, "images": int(len(x)), "object_pixels": float(masks.mean()),
            "energy": {"kgnet_class_map": float(np.nanmean(energy_kgnet)),
                       "baseline_gradcam": float(np.nanmean(energy_base)),
                       "difference": paired_difference(energy_kgnet, energy_base)},
            "pointing": float(on[correct].float().mean()), "pointing_all": float(on.float().mean()),
            "correct": int(correct.sum())}


@torch.no_grad()
def infusion_attention(model, x: torch.Tensor, top: torch.Tensor, masks: np.ndarray, grid: tuple[int, int]) -> dict | None:
    """Where the infusion looks: each spatial token's attention (mean over heads, last stage) to
    the knowledge token of the image's top contributing concept, as a map; its energy on the
    garment and whether its strongest token is on it. None for a model without an infusion."""
    from kgnet.explain.pointing import energy_on_object

    labels = model.graph_encoder.token_labels
    if not labels:
        return None
    names = model.head.matrix.names
    where = {label: i for i, label in enumerate(labels)}
    maps, found = [], []
    for start in range(0, len(x), 64):
        out = model(x[start:start + 64])
        attention = out.attention.float().mean(1)  # [b, T(+prefix), t]
        attention = attention[:, attention.shape[1] - grid[0] * grid[1]:]
        for row, j in zip(attention, top[start:start + 64].tolist()):
            token = where.get(names[j])
            found.append(token is not None)
            maps.append(row[:, token] if token is not None else torch.full((row.shape[0],), float("nan")))
    stacked = torch.stack(maps).reshape(len(maps), 1, *grid)
    blocks = garment_share(masks, grid)
    strongest = stacked.flatten(1).nan_to_num(-1).argmax(1)
    up = F.interpolate(stacked, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0].numpy()
    ok = np.asarray(found)
    energy = energy_on_object(np.nan_to_num(up, nan=0.0), masks)
    energy[~ok] = np.nan
    return {"top_concept_is_a_token": float(ok.mean()), "energy": float(np.nanmean(energy)),
            "pointing_all": float((blocks[torch.arange(len(x)), strongest] >= ON_OBJECT)[torch.as_tensor(ok)].float().mean())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--images", type=int, default=1000, help="validation images for the maps (default 1000)")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "concept_location")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "concept_location.json")
    args = parser.parse_args(argv)
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    results.setdefault("settings", {})
    results["settings"] = {"images": args.images, "split": "validation", "on_object": ON_OBJECT,
                           "candidates": {name: repr(CANDIDATES[name]) for name in CANDIDATES}}
    runs = results.setdefault("runs", {})
    for name in args.candidates:
        for seed in args.seeds:
            key = f"{name}/seed{seed}"
            if key in runs:
                continue
            candidate = CANDIDATES[name]
            if candidate.augment == CANDIDATES["default"].augment and name != "default":
                # the baseline has no concept head: it trains as the default run's does
                base = train(args.work / "default" / f"seed{seed}", CANDIDATES["default"], seed)
                with top_k_pooling(candidate.top_k):  # trained and measured with its pooling
                    run = train(args.work / name / f"seed{seed}", candidate, seed, variants=(candidate.variant,))
                    runs[key] = measure(run, args.images, base, candidate.variant)
            else:
                base = run = train(args.work / name / f"seed{seed}", candidate, seed, variants=("baseline", candidate.variant))
                runs[key] = measure(run, args.images, base, candidate.variant)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=1) + "\n")
            m = runs[key]
            print(f"{key}: top-1 kgnet {100 * m['top1']['kgnet']:.2f} baseline {100 * m['top1']['baseline']:.2f}; "
                  f"energy kgnet {100 * m['energy']['kgnet_class_map']:.1f} baseline "
                  f"{100 * m['energy']['baseline_gradcam']:.1f} (diff {100 * m['energy']['difference']['mean']:+.1f} "
                  f"[{100 * m['energy']['difference']['ci_low']:+.1f}, {100 * m['energy']['difference']['ci_high']:+.1f}]); "
                  f"pointing {100 * m['pointing']:.1f}%", flush=True)
    summary = summarise(runs)
    results["summary"] = summary
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    for name, s in summary.items():
        print(f"{name:18s} seeds {s['seeds']}: kgnet top-1 {s['kgnet_top1']['mean']:.2f} baseline "
              f"{s['baseline_top1']['mean']:.2f}; energy kgnet {s['energy_kgnet']['mean']:.1f}, kgnet - baseline "
              f"{s['energy_difference']['mean']:+.1f} [{s['energy_difference']['low']:+.1f}, "
              f"{s['energy_difference']['high']:+.1f}]; pointing {s['pointing']['mean']:.1f}%"
              + (f"; infusion attention energy {s['attention_energy']['mean']:.1f}, its strongest token on the "
                 f"garment {s['attention_pointing_all']['mean']:.1f}%" if "attention_energy" in s else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
