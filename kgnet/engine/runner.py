"""Running a training: every variant of a config trained, released and scored into one run folder.

`python -m kgnet.train` parses its arguments and calls `run`; the benchmarks and the tests call
`run` with a `Config`. The steps, in order: check every input (`_check_inputs`), build the data,
build each variant's class graph (one per hop count, so a variant trains identically alone or
in company), then per variant: train (`kgnet.engine.trainer`), with held-out classes train its
GZSL calibration model (`kgnet.engine.gzsl`), release (`kgnet.release`), and predict the test
split once for metrics.json and the figures (`kgnet.engine.scoring`).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from kgnet.atomic import write_text_atomic
from kgnet.checks import available_device, input_file, readable_checkpoint
from kgnet.config import Config, load_config, save_config
from kgnet.data.builder import build_datasets
from kgnet.data.preprocess import resolve_preprocessing
from kgnet.engine.distributed import resolve_device, setup_distributed, teardown_distributed
from kgnet.engine.evaluation import Analysis, scoring_task
from kgnet.engine.gzsl import calibration_bundle, check_calibration, pseudo_unseen_classes, validation_gamma
from kgnet.engine.resume import finished_variants, refuse_changed_settings, remove_stale_temporaries
from kgnet.engine.run_claim import claim_run_folder, is_primary_process
from kgnet.engine.scoring import metrics_json, read_metrics, score
from kgnet.engine.tables import comparison_table
from kgnet.engine.trainer import check_amp, read_history, short_training_warning, step_plan, train_variant
from kgnet.engine.settings_read import check_settings_read
from kgnet.errors import ConfigError, KgnetError
from kgnet.figures.curves import plot_curves
from kgnet.kg.build import build_class_graph
from kgnet.kg.text_features import check_text_model, encode_texts
from kgnet.models import create_model, graph_hops, parts_of, reads_ontology, reads_text
from kgnet.paths import ontology_setting, resolve_ontology
from kgnet.progress import interactive
from kgnet.engine.warm_start import release_to_start_from, start_from_release
from kgnet.release import RESTORE_RELEASE, load_release, save_release
from kgnet.variants import VARIANTS, Variant, check_variants

log = logging.getLogger("kgnet.train")
#: Subfolder of a variant folder where its GZSL calibration model trains (`kgnet.engine.gzsl`).
CALIBRATION = "calibration"


def _check_inputs(config: Config, folder: Path, *, resume: bool) -> dict[str, Any]:
    """Check everything a run reads and where it writes, before anything is loaded or created.

    The one place `run` validates its input: variants, the device, the run folder (and a
    warning when nothing would be trained), the files the knowledge settings name, and on `resume` every
    checkpoint and release the run will read back (so a damaged one costs one message, not a
    half-resumed folder).

    Returns:
        The metrics.json entries of variants an interrupted run finished (empty when new).
    """


    check_variants(config.variants)
    variants = [VARIANTS[name] for name in config.variants]
    for variant in variants:  # a composition the registry cannot make
        parts_of(variant)
    check_settings_read(config, variants)
    available_device(config.train.device, "train.device")
    check_amp(config.train.amp, resolve_device(config.train.device))
    if config.train.epochs == 0:  # legal: releases the initial weights
        log.warning("train.epochs=0: nothing is trained; the released models keep their initial weights (the "
                    "pretrained backbone with model.pretrained, random otherwise). Set train.epochs to train")
    knowledge = config.knowledge
    if any(reads_ontology(config, v) for v in variants):
        ontology = resolve_ontology(knowledge.ontology, "knowledge.ontology") if knowledge.ontology else None
        named = [("knowledge.ontology", ontology), ("knowledge.class_map", knowledge.class_map),
                 *(("knowledge.imports", path) for path in knowledge.imports)]
        for what, path in named:
            if path is not None:
                input_file(path, what)
    if any(reads_text(config, v) for v in variants):
        check_text_model(config.graph_encoder.text_model, "graph_encoder.text_model")
    if not resume:
        return {}
    if load_config(folder / "config.yaml") != config:
        raise ConfigError(f"--resume {folder}: a run continues with its saved config.yaml; drop --config/--set")
    recorded = read_metrics(folder / "metrics.json", "restore it, or delete it to train every variant again from "
                            "its last.pt")
    finished = finished_variants(recorded, config.variants)
    for name in config.variants:
        if name in finished:
            input_file(folder / name / "model.json", "--resume")
            readable_checkpoint(folder / name / "model.safetensors", "--resume", remedy=RESTORE_RELEASE)
        else:
            for checkpoint in (folder / name / "last.pt", folder / name / CALIBRATION / "last.pt"):
                if checkpoint.exists():
                    readable_checkpoint(checkpoint, "--resume", remedy=f"restore it from a copy, or delete it to "
                                        f"train {checkpoint.parent.relative_to(folder)} from its first epoch")
    refuse_changed_settings(config, folder, finished)
    return finished


def _with_data_set_ontology(config: Config, bundle) -> Config:
    """`config` naming the ontology the run reads: with `knowledge.ontology` null, the data set's
    shipped one, so config.yaml says which file the run read (and repeats the run with it)."""
    if config.knowledge.ontology or bundle.card is None or not bundle.card.ontology.is_file():
        return config
    knowledge = dataclasses.replace(config.knowledge, ontology=ontology_setting(bundle.card.ontology))
    return dataclasses.replace(config, knowledge=knowledge)


def _class_graph(config: Config, bundle, *, required: bool, progress: bool, hops: int, text: bool = True):
    """The run's class-bound graph, its encoded node texts (knowledge variants only), and why
    there is no graph when there is none.

    Knowledge variants need the graph (any problem is the user's error). A baseline-only run
    uses it just for the hierarchy-aware metrics, so there a missing or unusable ontology is
    a warning and those metrics are left out. The graph reaches `hops` (the variant's
    `graph_hops`); node texts are encoded only when a variant reads them (`text`).
    """
    knowledge = config.knowledge
    # a path, or the name of a shipped ontology (fashion_mnist_garments, kgnet:fashion_mnist)
    ontology = (resolve_ontology(knowledge.ontology, "knowledge.ontology") if knowledge.ontology
                else bundle.card.ontology if bundle.card else None)
    if ontology is None:
        if required:
            raise ConfigError("knowledge.ontology: this data set has no shipped ontology; give an RDF file "
                              "describing its classes (or run only the baseline: --set variants=[baseline])")
        return None, None, "no ontology for this data set (knowledge.ontology is null and it ships none)"
    try:
        graph = build_class_graph(ontology, bundle.class_names, hops=hops, wnids=bundle.wnids,
                                  mapping_file=knowledge.class_map, predicate=knowledge.class_predicate,
                                  fmt=knowledge.format, imports=knowledge.imports,
                                  dataset_classes=bundle.dataset_classes)
    except KgnetError as err:
        if required:
            raise
        log.warning("no class hierarchy for the hierarchy-aware metrics: %s", err)
        return None, None, f"the run's ontology could not be compiled ({err})"
    log.info("knowledge: %s from %s", graph, ontology)
    text_features = encode_texts(graph.node_texts, config.graph_encoder.text_model,
                                 progress=progress and interactive()) if required and text else None
    return graph, text_features, None


def _trained_model(label: str, variant: Variant, config: Config, bundle, graph, text_features, folder: Path,
                   context, *, progress: bool):
    """A new model of `variant` trained on `bundle` in `folder` (`label` names it in the log), and
    its training result."""
    if context.is_primary:
        folder.mkdir(parents=True, exist_ok=True)
    start = release_to_start_from(config, variant.name, bundle.class_names) if config.model.init_from else None
    torch.manual_seed(config.seed)  # every variant starts from the same backbone init
    model = create_model(config, graph, text_features, variant=variant, num_classes=bundle.num_classes,
                         in_chans=bundle.in_chans, image_size=bundle.image_size, seen=bundle.seen_classes,
                         trained=list(start.class_names) if start is not None else None)
    if start is not None:
        start_from_release(model, start, config, graph=graph, class_names=bundle.class_names,
                           preprocessing=bundle.preprocessing)
    result = train_variant(label, config, model, bundle, folder, context, show_progress=progress)
    return model, result


def _calibration_gamma(variant: Variant, config: Config, bundle, graph, text_features, folder: Path, context, *,
                       progress: bool) -> tuple[float, dict[str, Any]]:
    """The GZSL calibration constant of `variant`, chosen on validation by a calibration model
    that holds pseudo-unseen classes out as well (`kgnet.engine.gzsl`), trained in
    `folder`/calibration; and what metrics.json says about it."""

    pseudo = pseudo_unseen_classes(bundle.seen_classes, bundle.unseen_classes, config.seed)
    names = [bundle.class_names[c] for c in pseudo]
    calibration = calibration_bundle(bundle, pseudo)
    if context.is_primary:
        log.info("%s: GZSL calibration model, %s held out as well (pseudo-unseen)", variant.name, ", ".join(names))
    model, result = _trained_model(f"{variant.name}-calibration", variant, config, calibration, graph,
                                   text_features, folder / CALIBRATION, context, progress=progress)
    gamma = validation_gamma(model, calibration, pseudo, device=context.device, context=context)
    if context.is_primary:
        log.info("%s: GZSL calibration constant %.4f (chosen on %d validation images)", variant.name, gamma,
                 len(calibration.val))
    return gamma, {"gzsl_pseudo_unseen": names, "gzsl_calibration_seconds": result.train_seconds}


def _trained_variant(variant: Variant, config: Config, bundle, graph, text_features, folder: Path, context, *,
                     finished: dict[str, Any] | None, progress: bool):
    """`variant` trained (with its GZSL calibration constant when classes are held out) and
    released, or, when an interrupted run finished it before (`finished`: its metrics.json
    entry), read back from its release; with its training history, the training numbers of
    metrics.json and the calibration constant (None = none)."""

    vfolder = folder / variant.name
    if finished is not None:
        log.info("%s: finished earlier, kept", variant.name)
        kept = ("train_seconds", "train_images_per_second", "epochs", "amp", "compile", "params",
                "gzsl_pseudo_unseen", "gzsl_calibration_seconds")
        training = {k: finished[k] for k in kept if k in finished}
        release = load_release(vfolder, context.device)
        return release.model, read_history(vfolder / "log.csv"), training, release.gzsl_gamma
    model, result = _trained_model(variant.name, variant, config, bundle, graph, text_features, vfolder, context,
                                   progress=progress)
    training = {**result.training_numbers(), "params": model.param_counts()}
    gamma = None
    if bundle.unseen_classes and config.train.gzsl_calibration == "pseudo-unseen":
        gamma, calibration = _calibration_gamma(variant, config, bundle, graph, text_features, vfolder, context,
                                                progress=progress)
        training |= calibration
    if context.is_primary:
        save_release(vfolder, model, variant=variant, config=config, class_names=bundle.class_names,
                     wnids=bundle.wnids, seen_classes=bundle.seen_classes, unseen_classes=bundle.unseen_classes,
                     preprocessing=bundle.preprocessing, graph=graph, text_features=text_features,
                     gzsl_gamma=gamma)
    return model, result.history, training, gamma


def run(config: Config, folder: str | Path, *, resume: bool = False, progress: bool = True) -> dict[str, dict[str, Any]]:
    """Train every variant of `config` into the run folder `folder`, score each, return the metrics.

    This is what `python -m kgnet.train` runs; benchmarks, sweeps and tests call it with a
    `Config`. Each variant trains (`kgnet.engine.trainer.train_variant`), is released
    (`kgnet.release`) and has its test split predicted once, by the model in memory, for
    metrics.json and the figures (`kgnet.engine.scoring`). Under torchrun every process calls
    it: each trains on its share of every batch and predicts its share of every split; only
    the primary process writes files.

    Args:
        config: The run's settings.
        folder: The run folder: a new (or empty) one; with `resume`, the folder of the run to
            continue, whose config.yaml `config` must be.
        resume: Continue a killed run: finished variants keep their numbers, an interrupted
            one continues from its last.pt.
        progress: Progress displays (`kgnet.progress`) on the long loops.

    Returns:
        Variant -> its metrics.json entry, on the primary process (an empty dict on the other
        processes of a torchrun job).

    Raises:
        KgnetError: A user error (config, device, data, ontology, a non-empty folder, a
            damaged checkpoint); nothing is written before the inputs are checked
            (`_check_inputs`) and the data and the knowledge are ready; a run folder this call
            created is removed again when one is found later and no checkpoint was saved yet.
            `TrainingDiverged` when the loss stops being finite (the last good checkpoint is kept).
    """



    folder = Path(folder)
    # the ranks of a torchrun job share the primary's claim, taken before anything is read or written
    claim = claim_run_folder(folder, "--resume" if resume else "--out", new=not resume) \
        if is_primary_process() else None
    try:
        finished = _check_inputs(config, folder, resume=resume)
        if resume and claim is not None:
            remove_stale_temporaries(folder)
        return _run(config, folder, finished, resume=resume, progress=progress,
                    created=claim is not None and claim.created)
    finally:
        if claim is not None:
            claim.release()


def _run(config: Config, folder: Path, finished: dict[str, Any], *, resume: bool, progress: bool,
         created: bool) -> dict[str, dict[str, Any]]:
    """`run` once the folder is claimed and the inputs checked."""
    owns_group = not (dist.is_available() and dist.is_initialized())
    context = setup_distributed(config.train.device)
    try:
        torch.manual_seed(config.seed)
        data = config.data
        bundle = build_datasets(data, seed=config.seed, download=data.download, augment=data.augment,
                                verify=data.verify, preprocessing=resolve_preprocessing(data, config.model))
        check_calibration(bundle, config.train.gzsl_calibration, config.seed)
        config = _with_data_set_ontology(config, bundle)
        tc = config.train
        warning = short_training_warning(step_plan(len(bundle.train), tc, context.world_size))
        if warning and context.is_primary:
            log.warning("%s", warning)
        variants = [VARIANTS[name] for name in config.variants]
        show = progress and context.is_primary
        # one class graph per hop count (and its node texts where a variant reads them), so a
        # variant trains on the same graph alone or beside others; the hierarchy-aware metrics
        # read the graph at the furthest hops any part may ask for, the same in every run
        graphs: dict[int, tuple[Any, Any]] = {}
        for variant in (v for v in variants if reads_ontology(config, v)):
            hops, text = graph_hops(config, variant), reads_text(config, variant)
            graph, text_features = graphs.get(hops, (None, None))
            if graph is None or (text and text_features is None):
                graph, text_features, _ = _class_graph(config, bundle, required=True, progress=show, hops=hops,
                                                       text=text)
                graphs[hops] = (graph, text_features)
        hierarchy_hops = max(config.graph_encoder.hops, config.concept_head.hops)
        graph, _, no_graph = (graphs[hierarchy_hops][0], None, None) if hierarchy_hops in graphs else _class_graph(
            config, bundle, required=False, progress=show, hops=hierarchy_hops, text=False)
        analysis_on = config.train.analysis != "none"
        task = scoring_task(bundle.class_names, bundle.seen_classes, bundle.unseen_classes, graph, seed=config.seed,
                            silhouettes=analysis_on, no_graph_reason=no_graph or "no class hierarchy",
                            novel=bundle.novel_classes)
        analysis = None
        if context.is_primary:
            if not resume:
                folder.mkdir(parents=True, exist_ok=True)
                save_config(config, folder / "config.yaml")
            log.info("run folder: %s", folder)
            if analysis_on:
                supers = task.superclasses.names if task.superclasses is not None else None
                analysis = Analysis(folder, "test", bundle.class_names, supers, projection=config.train.analysis,
                                    seed=config.seed)
        metrics_file = folder / "metrics.json"
        metrics: dict[str, Any] = dict(finished)
        histories: dict[str, list[dict[str, Any]]] = {}
        for variant in variants:
            name = variant.name
            vgraph, vtext = graphs.get(graph_hops(config, variant), (graph, None))
            model, histories[name], training, gamma = _trained_variant(
                variant, config, bundle, vgraph, vtext if reads_text(config, variant) else None, folder, context,
                finished=metrics.get(name), progress=progress)
            scored = score(model, bundle.test, dataclasses.replace(task, gzsl_gamma=gamma), split="test",
                           device=context.device, context=context,
                           desc=f"{name} test" if progress else None)
            if scored is not None:
                scores, predictions = scored
                metrics[name] = {**{k: scores.pop(k) for k in ("top1", "top5", "per_class")}, **training, **scores}
                write_text_atomic(metrics_file, metrics_json(metrics))
                if analysis is not None:
                    analysis.add(name, metrics[name], predictions, held_out=bundle.unseen_classes)
        if not context.is_primary:
            return {}
        if analysis is not None:
            analysis.finish()
        metrics = {name: metrics[name] for name in config.variants}
        write_text_atomic(folder / "comparison.txt", comparison_table(metrics) + "\n")
        plot_curves(histories, folder / "curves.png")
        log.info("%s", bundle.summary())
        return metrics
    except BaseException:
        # Whatever stopped the run (a user's mistake found mid-run such as an unreadable image, an
        # error of a library, Ctrl-C): a folder this call made with no checkpoint to resume from is
        # removed; one with checkpoints is kept for --resume.
        if created and context.is_primary and not any(folder.glob("*/last.pt")):
            shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        if owns_group:
            teardown_distributed()
