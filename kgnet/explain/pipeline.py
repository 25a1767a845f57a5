"""From a run folder to figures, faithfulness numbers and the gallery (what the CLI runs).

Only the releases are read (`model.safetensors` + `model.json` of the baseline and the knowledge
variant, via `kgnet.release.load_release`); test images come from the run's own data config and
seed, and image files are prepared with the release's preprocessing (as `kgnet.predict` does),
so every call on a run explains the same images the way the models see them.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from kgnet.atomic import write_text_atomic
from kgnet.checks import available_device, input_file, output_folder, run_folder
from kgnet.config import load_config
from kgnet.engine.run_claim import claim_output_folder
from kgnet.engine.scoring import read_metrics
from kgnet.data.builder import build_datasets
from kgnet.data.preprocess import read_image
from kgnet.errors import KgnetError
from kgnet.explain.explanations import Explanation, explanation_of
from kgnet.explain.faithfulness import STEPS, deletion_insertion, mean_std
from kgnet.explain.gallery import Card, write_gallery
from kgnet.explain.gradcam import LogitsOnly, target_layer
from kgnet.explain.pointing import energy_on_object, object_masks, paired_difference
from kgnet.explain.road import PERCENTILES as ROAD_PERCENTILES
from kgnet.explain.road import road_scores
from kgnet.figures.explanation import Prediction, curves_figure, explanation_figure, thumbnail_figure
from kgnet.progress import progress
from kgnet.release import load_release, variant_release

log = logging.getLogger(__name__)

#: The output folder's marker: a folder holding it was written by this command (`claim_output_folder`).
OWNER = ".kgnet-explain"
#: Most steps of the deletion/insertion curves (each a forward pass over every image).
MAX_STEPS = 1000

FILL_DESCRIPTIONS = {
    "mean": "the normalised zero (each channel at the data set's mean)",
    "blur": "a Gaussian blur of the image (sigma = side / 8)",
}


@dataclass
class Sample:
    """One image to explain."""

    title: str
    slug: str
    image: Tensor  # normalised [C, H, W]
    true_label: str | None


@dataclass
class ExplainResult:
    out: Path
    figures: list[Path]
    faithfulness: dict[str, Any] | None
    explanation: Explanation  # how the knowledge variant explains


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_")[:60] or "image"


def _display(image: Tensor, preprocessing) -> np.ndarray:
    """A normalised image as [H, W] or [H, W, 3] in [0, 1] for drawing."""
    pixels = preprocessing.unnormalise(image)
    return pixels[0].numpy() if pixels.shape[0] == 1 else pixels.permute(1, 2, 0).numpy()


def _test_split(run: Path, preprocessing):
    config = load_config(run / "config.yaml")
    bundle = build_datasets(config.data, seed=config.seed, download=False, augment=False,
                            preprocessing=preprocessing)
    order = np.random.default_rng(config.seed).permutation(len(bundle.test))
    return bundle, order, config.seed


def _test_samples(bundle, indices: Sequence[int]) -> list[Sample]:
    samples = []
    for i in indices:
        image, label = bundle.test[int(i)]
        samples.append(Sample(f"test image {int(i)}", f"test{int(i)}", image, bundle.class_names[int(label)]))
    return samples


@torch.no_grad()
def _probabilities(model, images: Tensor, batch_size: int = 64) -> Tensor:
    """Probabilities [B, K] of `images`."""
    return torch.cat([model(images[start:start + batch_size]).logits.float().softmax(dim=1)
                      for start in range(0, len(images), batch_size)])


def _check_inputs(run: str | Path, *, images: Sequence[str | Path], samples: int | None, out: str | Path | None,
                  variant: str, baseline: str, faithfulness: int | None, steps: int, fill: str,
                  device: str) -> tuple[Path, Path, dict[str, Path]]:
    """Everything `explain_run` reads and writes, checked before any model or image loads.

    Returns:
        The run folder, the output folder, and the release folder of the baseline and the variant.
    """
    run = run_folder(run)
    if bool(images) == (samples is not None):
        raise KgnetError("give either --images PATH... or --samples N")
    if samples is not None and samples < 1:
        raise KgnetError(f"--samples {samples}: give at least 1")
    if faithfulness is not None and faithfulness < 0:
        raise KgnetError(f"--faithfulness {faithfulness}: give 0 (skip) or more test images")
    if not 1 <= steps <= MAX_STEPS:
        raise KgnetError(f"--steps {steps}: give 1 to {MAX_STEPS} (steps of the deletion and insertion curves)")
    if fill not in FILL_DESCRIPTIONS:
        raise KgnetError(f"--fill {fill}: choose one of {', '.join(FILL_DESCRIPTIONS)}")
    if variant == baseline:
        raise KgnetError(f"--variant and --baseline both name {variant!r}; compare two different variants")
    available_device(device, "--device")
    for path in images:
        input_file(path, "--images")
    out = output_folder(out if out is not None else run / "explain", "--out", must_be_empty=False)
    folders = {baseline: variant_release(run, baseline, "--baseline"), variant: variant_release(run, variant)}
    run_metrics(run)  # read at the end for the gallery: a damaged file is named now, not after the figures
    return run, out, folders


def explain_run(
    run: str | Path,
    *,
    images: Sequence[str | Path] = (),
    samples: int | None = None,
    out: str | Path | None = None,
    variant: str = "kgnet",
    baseline: str = "baseline",
    faithfulness: int | None = None,
    steps: int = STEPS,
    fill: str = "mean",
    device: str = "auto",
) -> ExplainResult:
    """Explain images of a trained run; see `python -m kgnet.explain --help`.

    Args:
        run: Run folder of `python -m kgnet.train`.
        images: Image files to explain (or use `samples`).
        samples: Explain this many test images instead.
        out: Output folder; default `run/explain`.
        variant: The knowledge variant (its attention names the concepts).
        baseline: The variant without knowledge to compare Grad-CAM with.
        faithfulness: Test images for the faithfulness numbers; None = 100 with `samples`,
            0 (none) with `images`.
        steps: Steps of the deletion/insertion curves.
        fill: What a deleted pixel becomes ("mean" or "blur").
        device: "cpu", "cuda", "cuda:N" or "auto".
    """
    run, out, folders = _check_inputs(run, images=images, samples=samples, out=out, variant=variant,
                                      baseline=baseline, faithfulness=faithfulness, steps=steps, fill=fill,
                                      device=device)
    with claim_output_folder(out, "--out", owner=OWNER) as claim:
        try:
            return _explain(run, out, folders, images=images, samples=samples, variant=variant, baseline=baseline,
                            faithfulness=faithfulness, steps=steps, fill=fill, device=device)
        except BaseException:
            if claim.created:  # nothing half-made is left: a folder this call made goes again
                shutil.rmtree(out, ignore_errors=True)
            raise


def _explain(run: Path, out: Path, folders: dict[str, Path], *, images, samples, variant, baseline, faithfulness,
             steps, fill, device) -> ExplainResult:
    """`explain_run` once its inputs are checked and this process holds the output folder."""
    if faithfulness is None:
        faithfulness = 100 if samples is not None else 0
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"

    models, releases = {}, {}
    for name, folder in folders.items():
        releases[name] = load_release(folder, device)
        models[name] = releases[name].model
    explanations = {name: explanation_of(model) for name, model in models.items()}
    explanations[variant].check_variant(variant)
    explanations[baseline].check_baseline(baseline)
    release = releases[variant]
    for key in ("class_names", "preprocessing"):
        if getattr(releases[baseline], key) != getattr(release, key):
            raise KgnetError(f"--baseline {baseline} and --variant {variant} differ in {key}; they must come "
                             "from the same run")
    class_names, preprocessing = release.class_names, release.preprocessing
    log.info("Grad-CAM layer: %s of %s", model_layer_name(models[variant]), models[variant].backbone.name)

    bundle = order = None
    seed = 0
    if samples is not None or faithfulness:
        bundle, order, seed = _test_split(run, preprocessing)
    if images:
        chosen = [Sample(Path(p).name, _slug(Path(p).stem), read_image(p, preprocessing), None) for p in images]
    else:
        count = min(samples, len(order))
        if count < samples:
            log.warning("--samples %d: the test split has only %d images", samples, count)
        chosen = _test_samples(bundle, order[:count])
    # Read every image before the first figure is written: a bad one fails with nothing written.
    scored = _test_samples(bundle, order[:min(faithfulness, len(order))]) if faithfulness else []

    batch = torch.stack([s.image for s in chosen]).to(device)
    probabilities, predicted, shown = {}, {}, {}
    for name, model in models.items():
        probabilities[name] = _probabilities(model, batch)
        predicted[name] = probabilities[name].argmax(dim=1)
        shown[name] = explanations[name].saliency(model, batch, predicted[name].tolist())[-1]
    size = tuple(batch.shape[-2:])
    explanation = explanations[variant]
    panels = explanation.panels(models[variant], release.graph, class_names, batch, size)
    cards, figures = [], []
    for i, sample in enumerate(progress(chosen, desc="figures", unit="figure")):
        preds = [Prediction(name, class_names[int(predicted[name][i])], float(probabilities[name][i].max()),
                            _relative(shown[name].maps[i:i + 1])[0], shown[name].name) for name in models]
        panel = panels(i)
        path, small = (out / folder / f"{i:03d}-{sample.slug}.png" for folder in ("figures", "thumbnails"))
        pixels = _display(sample.image, preprocessing)
        explanation_figure(path, image=pixels, title=sample.title, true_label=sample.true_label, predictions=preds,
                           concepts=panel.concepts, maps=panel.maps, uniform_weight=panel.uniform_weight,
                           scores=panel.scores)
        thumbnail_figure(small, image=pixels, true_label=sample.true_label, predictions=preds)
        figures.append(path)
        cards.append(Card(sample.title, path.relative_to(out).as_posix(), small.relative_to(out).as_posix(),
                          sample.true_label, {p.variant: (p.label, p.probability) for p in preds}, panel.listed,
                          explanation.card_title))

    report = curves_name = None
    if faithfulness:
        report, curves = _faithfulness(models, explanations, variant, scored, class_names, device=device,
                                       steps=steps, fill=fill, seed=seed, preprocessing=preprocessing,
                                       baseline=baseline)
        report["run"] = str(run)
        write_text_atomic(out / "faithfulness.json", json.dumps(report, indent=2) + "\n")
        curves_name = "faithfulness.png"
        curves_figure(out / curves_name, curves, fill=fill)
    write_gallery(out / "index.html", run=run.name, cards=cards, faithfulness=report, curves=curves_name,
                  scores=run_scores(run, list(models)), explanation=explanation)
    _remove_stale(out, figures, faithfulness=bool(faithfulness))
    return ExplainResult(out=out, figures=figures, faithfulness=report, explanation=explanation)


def run_metrics(run: Path) -> dict[str, Any]:
    """The run's metrics.json (empty when training has not written it), or KgnetError when damaged."""
    return read_metrics(run / "metrics.json", "restore it, or score the run again with python -m kgnet.evaluate")


def run_scores(run: Path, variants: list[str]) -> dict[str, dict[str, Any]]:
    """variant -> {"top1", "images"}: the test top-1 the run's metrics.json holds for each variant
    (a run scored on the validation split, or still training, has none)."""
    metrics = run_metrics(run)
    return {name: {"top1": metrics[name]["top1"], "images": metrics[name].get("test_images")}
            for name in variants if "top1" in metrics.get(name, {})}


def _remove_stale(out: Path, figures: list[Path], *, faithfulness: bool) -> None:
    """Delete what an earlier call wrote to `out` and this one did not, so the folder matches the gallery.

    Only this command's own outputs are touched: NNN-*.png under figures/ and thumbnails/, and
    faithfulness.*.
    """
    keep = {p.name for p in figures}
    for folder in ("figures", "thumbnails"):
        for old in (out / folder).glob("[0-9][0-9][0-9]-*.png"):
            if old.name not in keep:
                old.unlink()
    if not faithfulness:
        for name in ("faithfulness.json", "faithfulness.png"):
            (out / name).unlink(missing_ok=True)


def model_layer_name(model) -> str:
    """The Grad-CAM target layer's name inside the timm model."""
    layer = target_layer(model)
    return next(name for name, module in model.backbone.model.named_modules() if module is layer)


def _relative(maps: np.ndarray) -> np.ndarray:
    """Maps' positive part scaled to [0, 1] per image (for drawing); a map with none stays 0."""
    positive = np.clip(maps, 0, None)
    top = positive.reshape(len(positive), -1).max(axis=1).reshape(-1, 1, 1) if len(positive) else positive
    return np.divide(positive, top, out=np.zeros_like(positive), where=top > 0)


#: Why a zero map has no deletion/insertion number: it orders the pixels at random (ties).
ZERO_MAP_WHY = ("the map is zero everywhere on {zero} of {images} images (on a cosine head Grad-CAM's gradient "
                "x activation vanishes: the score does not change with the feature scale); a zero map orders pixels "
                "at random, so its deletion/insertion AUC and ROAD would say nothing about the model")


def saliency_scores(model, images: Tensor, saliency: np.ndarray, classes: list[int], *, steps: int, fill: str,
                    what: str) -> tuple[dict[str, Any], dict[str, np.ndarray] | None]:
    """Deletion/insertion AUCs and ROAD of `saliency` over the images whose map is not zero everywhere.

    Returns the numbers (`zero_maps`: the share of zero maps; `images_scored`; the AUCs and
    ROAD, or None with `not_available` saying why when every map is zero) and the curves (None then).
    """
    zero = saliency.reshape(len(saliency), -1).max(axis=1) <= 0 if len(saliency) else np.zeros(0, bool)
    keep = np.flatnonzero(~zero)
    entry: dict[str, Any] = {"zero_maps": float(zero.mean()) if len(zero) else 0.0, "images_scored": int(len(keep))}
    if zero.any():
        entry["zero_maps_why"] = ZERO_MAP_WHY.format(zero=int(zero.sum()), images=len(zero))
        log.warning("%s: zero everywhere on %d of %d images; those are left out of deletion/insertion and ROAD",
                    what, int(zero.sum()), len(zero))
    if not len(keep):
        return {**entry, "deletion": None, "insertion": None, "road": None,
                "not_available": entry["zero_maps_why"]}, None
    index = torch.as_tensor(keep, device=images.device)
    kept = [classes[i] for i in keep]
    result = deletion_insertion(LogitsOnly(model), images[index], saliency[keep], kept, steps=steps, fill=fill,
                                progress=f"deletion/insertion {what}")
    road = road_scores(LogitsOnly(model), images[index], saliency[keep], kept, progress=f"ROAD {what}")
    return {**entry, "deletion": mean_std(result["deletion"]), "insertion": mean_std(result["insertion"]),
            "road": {**mean_std(road), "percentiles": list(ROAD_PERCENTILES)},
            "mean_deletion_curve": [round(float(v), 5) for v in result["deletion_curve"].mean(axis=0)],
            "mean_insertion_curve": [round(float(v), 5) for v in result["insertion_curve"].mean(axis=0)]}, result


def _faithfulness(models: dict, explanations: dict[str, Explanation], variant: str, samples: list[Sample],
                  class_names: list[str], *, device: str, steps: int, fill: str, seed: int, preprocessing,
                  baseline: str | None = None) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    """Deletion/insertion AUC and ROAD of each model's maps (Grad-CAM; a concept head's exact
    class map too, which it is shown and scored by), where each model's shown map points (energy
    on the object), and the concept checks of `variant`."""
    images = torch.stack([s.image for s in samples]).to(device)
    tables: dict[str, dict[str, Any]] = {"gradcam": {}, "class_map": {}}
    curves, shown = {}, {}
    for name, model in models.items():
        classes = _probabilities(model, images).argmax(dim=1).tolist()
        for saliency in explanations[name].saliency(model, images, classes):
            entry, result = saliency_scores(model, images, saliency.maps, classes, steps=steps, fill=fill,
                                            what=f"{name} {saliency.name}")
            tables[saliency.table][name] = entry
            shown[name] = (saliency.name, saliency.maps, entry["zero_maps"])  # the last is the one shown
            if result is not None and saliency.drawn:
                curves[f"{name} {saliency.name}"] = result
        tables["gradcam"][name]["layer"] = model_layer_name(model)
    labels = torch.tensor([class_names.index(s.true_label) for s in samples], device=images.device)
    report = {
        "settings": {
            "images": len(samples), "split": "test", "steps": steps, "fill": fill,
            "fill_description": FILL_DESCRIPTIONS[fill],
            "target": "probability of each model's own predicted class",
            "saliency": "Grad-CAM (pytorch-grad-cam) on the backbone's last feature stage; for a concept head also "
                        "its exact class map (each concept's contribution placed on the token that found it)",
            "auc": "area under probability vs fraction of pixels changed (0..1), sklearn.metrics.auc, over the "
                   "images whose map is not zero everywhere",
            "road": "pytorch_grad_cam.metrics.road.ROADCombined over the same images: removed pixels imputed from "
                    "their neighbours, (LeRF - MoRF) / 2 of the probability change averaged over the percentiles "
                    f"{list(ROAD_PERCENTILES)}; higher = more faithful",
        },
        "gradcam": tables["gradcam"],
        "class_map": tables["class_map"],
        "zero_maps": {name: zero for name, (_, _, zero) in shown.items()},
        **_pointing(shown, images, preprocessing, variant, baseline),
        "concepts": explanations[variant].concept_checks(models[variant], variant, images, labels, seed=seed),
    }
    return report, curves


def _pointing(shown: dict[str, tuple[str, np.ndarray, float]], images: Tensor, preprocessing, variant: str,
              baseline: str | None) -> dict[str, Any]:
    """Each model's share of map energy on the object (the map the gallery shows: a concept
    head's exact class map, else Grad-CAM), and `variant` minus `baseline`, paired by image."""
    if images.shape[1] != 1:
        why = "needs the object's pixels: only grayscale images on a black background (Fashion-MNIST) have them"
        return {"energy_on_object": {"not_available": why}}
    masks = object_masks(np.stack([_display(image, preprocessing) for image in images]))
    shares = {name: energy_on_object(saliency, masks) for name, (_, saliency, _) in shown.items()}
    result: dict[str, Any] = {"energy_on_object": {
        name: {"map": shown[name][0], "mean": float(np.nanmean(v)) if np.isfinite(v).any() else None,
               "images": int(np.isfinite(v).sum()), "object_pixels": float(masks.mean())}
        for name, v in shares.items()}}
    if baseline in shares and variant in shares and baseline != variant:
        result["energy_on_object_difference"] = {"of": f"{variant} - {baseline}",
                                                 **paired_difference(shares[variant], shares[baseline])}
    return result
