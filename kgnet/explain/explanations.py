"""How a head's predictions are explained: one registered `Explanation` per way a head explains.

Each head says how it explains (`Head.explains`, a key of `EXPLANATIONS`), and explain,
predict and the gallery ask that explanation instead of testing which head a model has:

- `gradcam` (the MLP head, the baseline): Grad-CAM of the predicted class; it names no concepts;
- `attention` (the prototype head): which knowledge tokens the image attended to in the
  infusion, and whether masking the most-attended one hurts more than a random one;
- `contributions` (the concept head): each concept's exact share of a class's logit, where the
  image activated it, its exact class map (a cosine head's Grad-CAM vanishes), and exact removal.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from kgnet.errors import KgnetError
from kgnet.explain.concepts import concept_faithfulness, concept_maps, summarise_concept_faithfulness, top_concepts
from kgnet.explain.contributions import MATTERS, class_map_images, read_concepts, region_maps, top_contributions
from kgnet.explain.gallery import attention_rows, concept_removal_rows
from kgnet.explain.ontology_paths import ontology_paths
from kgnet.models.registry import Registry

log = logging.getLogger(__name__)

#: How each head explains, by `Head.explains`.
EXPLANATIONS = Registry("explanation")


@dataclass
class Saliency:
    """One map of every image for its class, as the faithfulness numbers score it.

    Attributes:
        name: What it is: "Grad-CAM" or "exact class map".
        maps: [B, H, W], larger = more relevant.
        table: Where faithfulness.json keeps its numbers: `gradcam` or `class_map`.
        drawn: Whether its mean curves are drawn (a Grad-CAM that vanishes on a cosine head is not
            drawn beside real ones).
    """

    name: str
    maps: np.ndarray
    table: str
    drawn: bool = True


@dataclass
class Panel:
    """What one image's figure shows of the knowledge variant: its concepts and their maps."""

    concepts: list
    maps: np.ndarray
    listed: list[tuple[str, str]]  # (name, its number as the gallery card shows it)
    scores: Any = None  # contributions: a `kgnet.figures.explanation.ClassScores`: the predicted and runner-up class with their logits
    uniform_weight: float | None = None  # attention: 1 / knowledge tokens, the chart's reference line


class Explanation:
    """Grad-CAM only: how a model without knowledge is explained (the base of the others)."""

    #: What the gallery card calls its concept list.
    card_title = "top concepts"
    #: The gallery's opening sentence about what a bar means.
    meaning = ""
    #: The gallery's note on how the variant's bars and maps are drawn.
    reading = ""

    def check_variant(self, name: str) -> None:
        """KgnetError when `--variant name` cannot be explained by concepts."""
        raise KgnetError(f"--variant {name}: this variant has no knowledge tokens; name a knowledge variant "
                         "(e.g. kgnet)")

    def check_baseline(self, name: str) -> None:
        """A model without knowledge is what `--baseline` should be."""

    def saliency(self, model, images: Tensor, classes: list[int]) -> list[Saliency]:
        """The maps of `images` for `classes`, the one shown (and paired against the baseline) last."""
        # deferred: predict names concepts without pytorch-grad-cam's imports (OpenCV, ~0.5 s)
        from kgnet.explain.gradcam import gradcam

        return [Saliency("Grad-CAM", gradcam(model, images, classes), "gradcam")]

    def panels(self, model, graph, class_names: list[str], images: Tensor,
               size: tuple[int, int]) -> Callable[[int], Panel]:
        raise NotImplementedError

    def predict_lines(self, model, out, classes: Tensor, k: int) -> tuple[str, list[str]]:
        """What `kgnet.predict` prints under each image's classes: a title and one line per image."""
        return "", ["" for _ in range(len(classes))]

    def concept_checks(self, model, variant: str, images: Tensor, labels: Tensor, *, seed: int) -> dict[str, Any]:
        raise NotImplementedError

    def concept_rows(self, checks: dict[str, Any]) -> list[str]:
        """The gallery's HTML rows of `concept_checks`' numbers."""
        return []

    def summary_lines(self, checks: dict[str, Any]) -> list[str]:
        """What `python -m kgnet.explain` prints of `concept_checks`' numbers."""
        return []


EXPLANATIONS["gradcam"] = Explanation


class ConceptExplanation(Explanation):
    """What every explanation that names concepts shares: it explains `--variant`, and a
    `--baseline` that is one of its kind uses knowledge too (worth a warning)."""

    def check_variant(self, name: str) -> None:
        pass

    def check_baseline(self, name: str) -> None:
        log.warning("--baseline %s uses knowledge too; its Grad-CAM is still compared", name)


@EXPLANATIONS.register("attention")
class AttentionExplanation(ConceptExplanation):
    """The prototype design: the infusion's attention names the concepts (it does not add up to a score)."""

    card_title = "top concepts (attention)"
    meaning = ("A concept's bar is how much attention the image paid to it; attention does not add up to the "
               "class's score.")
    reading = ("With the prototype design (kgnet-prototype) the bars are the mean attention of the image's tokens "
               "to each concept and the heat maps where each concept was attended; attention weights do not add "
               "up to the score.")

    @torch.no_grad()
    def _attention(self, model, images: Tensor, batch_size: int = 64) -> tuple[Tensor, tuple[int, int]]:
        outs = [model(images[start:start + batch_size]) for start in range(0, len(images), batch_size)]
        return torch.cat([out.attention for out in outs]), outs[-1].token_grid

    def panels(self, model, graph, class_names, images, size):
        # deferred: predict names concepts without matplotlib (the figures' module, ~0.4 s)
        from kgnet.figures.explanation import BARS, MAPS

        attention, grid = self._attention(model, images)
        labels = model.graph_encoder.token_labels
        concepts = top_concepts(attention, labels, max(BARS, MAPS))

        def panel(i: int) -> Panel:
            maps = concept_maps(attention[i], grid, [c.position for c in concepts[i][:MAPS]], size)
            return Panel(concepts[i], maps, [(c.label, f"{c.weight:.3f}") for c in concepts[i][:3]],
                         uniform_weight=1.0 / len(labels))

        return panel

    def predict_lines(self, model, out, classes, k):
        top = top_concepts(out.attention, model.graph_encoder.token_labels, k)
        return "concepts", [", ".join(f"{c.label} ({c.weight:.2f})" for c in image) for image in top]

    def concept_checks(self, model, variant, images, labels, *, seed):
        return {"variant": variant, **summarise_concept_faithfulness(concept_faithfulness(model, images, seed=seed)),
                "masking": "the token is removed from the keys of every infusion block (logits -inf)"}

    def concept_rows(self, checks):
        return attention_rows(checks)

    def summary_lines(self, c):
        return [f"{c['variant']:<12} masking the top concept: drop {c['top_drop_mean']:+.4f}, a random one: "
                f"{c['random_drop_mean']:+.4f}; top > random on {100 * c['fraction_top_greater']:.0f}% of "
                f"{c['images']} images"]


@EXPLANATIONS.register("contributions")
class ContributionExplanation(ConceptExplanation):
    """The concept head: exact contributions, the regions that found each concept, exact removal."""

    card_title = "top concepts (logit points to the predicted class)"
    meaning = ("A concept's contribution is how much finding it in the image (a part, material or parent class the "
               "ontology links to the class) raised the class's score: remove the concept and the score falls by "
               "exactly that much.")
    reading = ("With a concept head (the default kgnet) a class's score (logit) is the sum of its concepts' "
               "contributions: concept j adds scale &times; A<sub>kj</sub> &times; c<sub>j</sub> logit points to "
               "class k, where c<sub>j</sub> is the best cosine of an image region with the concept and "
               "A<sub>kj</sub> the weight the ontology gives it for class k. Blue bars: the concepts that add to "
               "the predicted class; orange: what they and the runner-up's own strongest concepts add to the "
               "runner-up, which is why it lost. Each heat map shows where its concept was found (the cosine of "
               "each region with it), with the ontology path that links it to its class underneath.")

    def saliency(self, model, images, classes):
        """Grad-CAM (which vanishes on a cosine head: not drawn) and the exact class map, shown."""
        exact = class_map_images(read_concepts(model, images), classes, tuple(images.shape[-2:]), mode="bilinear")
        gradcam = super().saliency(model, images, classes)[0]
        return [Saliency(gradcam.name, gradcam.maps, gradcam.table, drawn=False),
                Saliency("exact class map", exact, "class_map")]

    def panels(self, model, graph, class_names, images, size):
        # deferred: predict names concepts without matplotlib (the figures' module, ~0.4 s)
        from kgnet.figures.explanation import PREDICTED_CONCEPTS, RUNNER_UP_CONCEPTS, ClassScores

        reading = read_concepts(model, images)
        paths = ontology_paths(graph, model.head.matrix)
        concepts, predicted, runner_up = top_contributions(model, reading, paths, predicted=PREDICTED_CONCEPTS,
                                                           runner_up=RUNNER_UP_CONCEPTS, min_share=MATTERS)

        def panel(i: int) -> Panel:
            maps = region_maps(reading.scores[i], reading.grid, [c.position for c in concepts[i]], size)
            p, r = int(predicted[i]), int(runner_up[i])
            scores = ClassScores(class_names[p], float(reading.logits[i, p]), class_names[r],
                                 float(reading.logits[i, r]))
            listed = [(c.label, f"{c.contribution:+.2f}") for c in concepts[i] if not c.for_runner_up][:3]
            return Panel(concepts[i], maps, listed, scores=scores)

        return panel

    def predict_lines(self, model, out, classes, k):
        head = model.head
        shares = head.contributions(out.concepts.float())[torch.arange(len(classes)), classes]
        top = shares.topk(min(k, shares.shape[1]), dim=1)
        names = head.matrix.names
        return "concepts (logit points to the top class)", [
            ", ".join(f"{names[j]} ({v:+.2f})" for v, j in zip(values, indices))
            for values, indices in zip(top.values.tolist(), top.indices.tolist())]

    def concept_checks(self, model, variant, images, labels, *, seed):
        # deferred: predict names concepts without scikit-learn (~0.8 s)
        from kgnet.explain.concept_removal import concept_precision, concept_removal, summarise_concept_removal

        head, matrix = model.head, model.head.matrix
        activations = read_concepts(model, images).activations
        class_nodes = set(matrix.node_ids[:head.num_classes])  # the K class nodes' own columns come first
        ontology_columns = torch.tensor([node not in class_nodes for node in matrix.node_ids],
                                        device=activations.device)
        precision = concept_precision(head, activations, labels, matrix.distance.to(activations.device),
                                      ontology_columns)
        return {
            "variant": variant, "head": "concept",
            **summarise_concept_removal(concept_removal(head, activations, seed=seed)),
            "precision_images": precision.pop("images"), **precision,
            "removal": "c_j := 0 and the logits recomputed by the concept head (exact: class k's logit moves by "
                       "scale * A_kj * c_j); the random concept is drawn among the other concepts the head scores "
                       "with",
            "deletion": "concepts removed in the order of their contribution to the predicted class; AUC of its "
                        "probability over the fraction removed (0..1), lower = the top concepts carry the "
                        "prediction; random_deletion_auc: the same in a random order",
            "precision": "correctly classified images: share of their 3 most activated ontology concepts (class "
                         "nodes left out) that the ontology links to the true class; chance: the linked share of "
                         "all ontology concepts; contribution_precision: the same for the 3 top contributions "
                         "(near 1 by construction)",
        }

    def concept_rows(self, checks):
        return concept_removal_rows(checks)

    def summary_lines(self, c):
        return [f"{c['variant']:<12} removing the top-contributing concept: drop {c['top_drop_mean']:+.4f}, a "
                f"random one: {c['random_drop_mean']:+.4f}; top > random on {100 * c['fraction_top_greater']:.0f}% "
                f"of {c['images']} images",
                f"{'':<12} concept deletion AUC {c['deletion_auc']['mean']:.3f} (random order "
                f"{c['random_deletion_auc']['mean']:.3f}); concept precision {c['concept_precision']:.3f} "
                f"(chance {c['concept_precision_chance']:.3f}) over {c['precision_images']} correct images"]


def explanation_of(model) -> Explanation:
    """The registered explanation of `model`'s head."""
    return EXPLANATIONS[model.head.explains]()
