"""Add classes to a trained model by editing its ontology: no training after the edit.

A user describes a new class in the ontology (a node with `kgnet:className`, its concepts and
relations, new concept nodes with their text). `extend_release` builds the release's variant over
the edited ontology with the new classes added to its outputs and carries every trained weight
over (`kgnet.models.transfer`). A concept head then scores a new class from its row of the
class-concept matrix; with the inductive graph encoder (`kgnet-inductive`) a new concept node gets
its vector from its text and its relations through the trained R-GCN, while a model with free
concept vectors (`kgnet`) has nothing trained for it. The new classes count as held out (unseen),
so a choice among all classes subtracts the release's GZSL constant from the trained classes' logits
where it has one (`Release.gzsl_gamma`; `kgnet.evaluate --ontology` chooses one on validation).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Sequence

from kgnet.atomic import write_text_atomic
from kgnet.checks import available_device, input_file
from kgnet.config import load_config
from kgnet.data.builder import build_datasets
from kgnet.engine.distributed import resolve_device
from kgnet.engine.evaluation import Analysis, released_variants, scoring_task
from kgnet.engine.run_claim import claim_run_folder
from kgnet.engine.scoring import metrics_json, predict, score
from kgnet.errors import KgnetError
from kgnet.kg.build import build_class_graph, load_knowledge_graph
from kgnet.kg.text_features import encode_texts
from kgnet.kg.vocab import KGNET
from kgnet.models import create_model, graph_hops, reads_ontology, reads_text
from kgnet.metrics.classification import best_gamma
from kgnet.models.controls import CONTROLS
from kgnet.models.transfer import carry_over
from kgnet.release import Release, load_release, weights_from_release

log = logging.getLogger(__name__)


def new_class_names(ontology: str | Path, known: Sequence[str]) -> list[str]:
    """Classes the ontology declares (`kgnet:className`) that are not in `known`, sorted."""
    kg = load_knowledge_graph(ontology)
    declared = {name for _, name in kg.literals.get(str(KGNET.className), ())}
    return sorted(declared - set(known))


def extend_release(release: Release, ontology: str | Path, class_names: Sequence[str] | None = None) -> Release:
    """`release`'s model over the edited `ontology`, with its classes and the new ones as outputs.

    Args:
        release: The trained model.
        ontology: The edited ontology (the trained one with classes, concepts and edges added).
        class_names: The outputs in order (every trained class among them); None = the trained
            classes, then the new ones the ontology declares (`new_class_names`).

    Returns:
        A release of the extended model, in eval mode on the release's device; the new classes are
        in `unseen_classes`.

    Raises:
        KgnetError: An ontology that does not bind the classes, a trained class missing from
            `class_names`, or weights that cannot be carried over.
    """
    if release.graph is None or not reads_ontology(release.config, release.variant):
        raise KgnetError(f"{release.folder}: {release.variant.name} reads no ontology, so a class added to one "
                         "has nothing to be scored from; use a knowledge variant (kgnet-inductive)")
    names = list(class_names) if class_names is not None else [
        *release.class_names, *new_class_names(ontology, release.class_names)]
    if not CONTROLS[release.variant.control].survives_edit:
        raise KgnetError(f"{release.folder}: the {release.variant.control} control of {release.variant.name} draws "
                         "from the whole graph, so an edited ontology would give its trained classes other knowledge; "
                         "extend the variant it controls instead")
    lost = [c for c in release.class_names if c not in names]
    if lost:
        raise KgnetError(f"{ontology}: the trained classes {lost} are not among the classes to score; keep them "
                         "in the ontology (a model cannot forget a class here)")
    config, variant = release.config, release.variant
    knowledge = config.knowledge
    graph = build_class_graph(ontology, names, hops=graph_hops(config, variant),
                              predicate=knowledge.class_predicate, fmt=None)
    texts = encode_texts(graph.node_texts, config.graph_encoder.text_model) if reads_text(config, variant) else None
    index = {name: i for i, name in enumerate(names)}
    seen = sorted(index[release.class_names[c]] for c in release.seen_classes)
    model = create_model(weights_from_release(config), graph, texts, variant=variant,
                         in_chans=release.preprocessing.in_chans, image_size=release.preprocessing.image_size,
                         seen=seen, trained=list(release.class_names))
    carry_over(release.model, model, source_graph=release.graph, target_graph=graph,
               source_classes=release.class_names, target_classes=names, what=f"{release.folder}")
    added = [i for i, name in enumerate(names) if name not in set(release.class_names)]
    unseen = sorted({index[release.class_names[c]] for c in release.unseen_classes} | set(added))
    log.info("%s extended with %d classes from %s: %s", variant.name, len(added), ontology,
             ", ".join(names[i] for i in added) or "none")
    device = next(release.model.parameters()).device
    return dataclasses.replace(release, model=model.to(device).eval(), class_names=names, wnids=None,
                               seen_classes=seen, unseen_classes=unseen, graph=graph)


def extended_classes(release: Release, ontology: str | Path, dataset_classes: Sequence[str]) -> list[str]:
    """The trained classes and the ontology's new ones, in the data set's order; a new class the data
    set has no images of is refused (there is nothing to score it on)."""
    added = new_class_names(ontology, release.class_names)
    missing = [name for name in added if name not in dataset_classes]
    if missing:
        raise KgnetError(f"{ontology}: declares classes the run's data set does not have ({', '.join(missing)}); "
                         "python -m kgnet.predict --ontology scores them on your images")
    if not added:
        raise KgnetError(f"{ontology}: declares no class the run did not have (a new class is a node with "
                         "kgnet:className); nothing to add")
    keep = set(release.class_names) | set(added)
    return [name for name in dataset_classes if name in keep]


def evaluate_extended(folder: str | Path, ontology: str | Path, split: str = "test",
                      variants: Sequence[str] | None = None, *, device=None, progress: bool = True) -> dict[str, dict]:
    """Score each released variant of a run extended with the edited `ontology`'s new classes (no
    training), among all classes on `split`; writes RUN/extended/<ontology name>/metrics.json and
    its confusion figures. The new classes are the unseen ones: the GZSL constant subtracted from the
    trained classes' logits is chosen on the validation split (never the test split), and
    `gzsl_ausuc` is the threshold-free area under the trained-new accuracy curve."""
    ontology = input_file(ontology, "--ontology")
    with claim_run_folder(folder, "--run", new=False):
        folder = Path(folder)
        config = load_config(folder / "config.yaml")
        names = released_variants(folder, config.variants, variants)
        available_device(device or config.train.device, "--device" if device else "the run's train.device")
        device = resolve_device(device or config.train.device)
        out = folder / "extended" / ontology.stem
        releases = {name: load_release(folder / name) for name in names}
        releases = {name: r for name, r in releases.items()
                    if r.graph is not None and reads_ontology(r.config, r.variant)}
        if not releases:
            raise KgnetError(f"--run {folder}: no variant there reads an ontology; nothing to extend")
        first = next(iter(releases.values()))  # the variants of a run share classes and preprocessing
        data = dataclasses.replace(config.data, classes=None, held_out_classes=[], novel_classes=[])
        everything = build_datasets(data, seed=config.seed, augment=False, verify=False,
                                    preprocessing=first.preprocessing)
        classes = extended_classes(first, ontology, everything.class_names)
        bundle = build_datasets(dataclasses.replace(data, classes=classes), seed=config.seed, augment=False,
                                verify=False, preprocessing=first.preprocessing)
        dataset = bundle.test if split == "test" else bundle.val
        out.mkdir(parents=True, exist_ok=True)
        analysis = Analysis(out, split, bundle.class_names, None, projection="pca", seed=config.seed)
        results: dict[str, dict] = {}
        for name, release in releases.items():
            extended = extend_release(release, ontology, bundle.class_names)
            model = extended.model.to(device)
            val = predict(model, bundle.val, device=device, embeddings=False)
            gamma = best_gamma(val.logits, val.labels, extended.seen_classes, extended.unseen_classes)
            task = dataclasses.replace(
                scoring_task(bundle.class_names, extended.seen_classes, extended.unseen_classes, extended.graph,
                             seed=config.seed, silhouettes=False), gzsl_gamma=gamma)
            results[name], predictions = score(model, dataset, task, split=split, device=device,
                                               desc=f"{name} extended {split}" if progress else None)
            results[name]["added_classes"] = [bundle.class_names[i] for i in extended.unseen_classes]
            analysis.add(name, results[name], predictions, held_out=extended.unseen_classes)
        write_text_atomic(out / "metrics.json", metrics_json(results))
    return results
