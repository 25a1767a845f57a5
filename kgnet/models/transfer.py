"""Carry a trained model's weights into a model of an edited ontology: what fits is kept, the rest built.

A user whose catalogue gains a class (or whose ontology gains a concept) should not train from
scratch. `carry_over` copies every weight of a trained model (a release) into a newly built one:

- a weight whose rows each belong to a class, an ontology node or a relation (the parts'
  `rows()`: the MLP head's classifier, free concept vectors, the R-GCN's per-node corrections and
  relation coefficients) is copied row by row, matched by the class's name, the node's IRI and the
  relation's name, so rows move with their nodes when ids shift; a new class, node or relation
  keeps the row the new model was built with (a correction of zero for the inductive encoder);
- a weight computed from the ontology (the concept head's class-concept matrix A) is the new
  model's: it is the edited ontology's;
- any other weight is copied when its shape is the same, and a different shape is an error that
  names it (a different backbone, embedding width or head), never a silent re-initialisation.

Parts the trained model did not have are built fresh; weights of its parts the new model lacks are
left behind. Both are logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn

from kgnet.errors import KgnetError
from kgnet.kg.graph import KnowledgeGraph

log = logging.getLogger(__name__)


@dataclass
class Carried:
    """What `carry_over` did.

    Attributes:
        copied: Keys copied whole.
        matched: Key -> (rows copied from the trained model, rows built fresh).
        built: Keys the trained model did not have (their parts are built fresh).
        left: Keys of the trained model the new one has no use for.
    """

    copied: list[str] = field(default_factory=list)
    matched: dict[str, tuple[int, int]] = field(default_factory=dict)
    built: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the log."""
        fresh = sum(new for _, new in self.matched.values())
        return (f"{len(self.copied) + len(self.matched)} weights carried over ({fresh} new rows of classes, nodes "
                f"and relations built fresh), {len(self.built)} built fresh, {len(self.left)} left behind")


def _names(kind: str, ids: Sequence[int], graph: KnowledgeGraph | None, classes: Sequence[str]) -> list[str]:
    """Identity of each row: a class's name, a node's IRI, a relation's name."""
    if kind == "class":
        return [f"class {classes[i]}" for i in ids]
    if graph is None:
        raise ValueError(f"rows of {kind}s need the model's graph")
    if kind == "node":
        return [graph.node_iris[i] for i in ids]
    if kind == "relation":
        names = graph.relation_names
        return [names[i] if i < len(names) else f"relation #{i}" for i in ids]
    raise ValueError(f"unknown kind of rows {kind!r}")


def check_classes_kept(source: KnowledgeGraph | None, target: KnowledgeGraph | None, what: str) -> None:
    """A trained class whose node the edited ontology binds to another class name is a renamed
    class: refused, since its weights would be carried to the wrong name."""
    if source is None or target is None or not len(source.class_index) or not len(target.class_index):
        return
    now = {target.node_iris[int(n)]: name for name, n in zip(target.class_names, target.class_index)}
    renamed = [(name, now[iri]) for name, n in zip(source.class_names, source.class_index)
               if (iri := source.node_iris[int(n)]) in now and now[iri] != name]
    if renamed:
        said = ", ".join(f"{old!r} is now {new!r}" for old, new in renamed[:4])
        raise KgnetError(f"{what}: classes renamed since it was trained ({said}); a class keeps its name "
                         "(give the new name to a new node, or train from scratch)")


def carry_over(source: nn.Module, target: nn.Module, *, source_graph: KnowledgeGraph | None,
               target_graph: KnowledgeGraph | None, source_classes: Sequence[str], target_classes: Sequence[str],
               what: str) -> Carried:
    """Load `source`'s weights into `target` where they fit (see the module doc).

    Args:
        source: The trained model (`KgnetModel`).
        target: The new model, built from the edited ontology and class list; changed in place.
        source_graph, target_graph: The full class graphs each was built from (None without one).
        source_classes, target_classes: Each model's class names, in output order.
        what: Where the trained model came from, for messages (`model.init_from RUN/kgnet`).

    Raises:
        KgnetError: A weight whose shape differs without rows to match (a different backbone,
            width or head), or a renamed class.
    """
    check_classes_kept(source_graph, target_graph, what)
    old, new = source.state_dict(), target.state_dict()
    old_rows, new_rows = source.rows(), target.rows()
    carried, state, misfits = Carried(), dict(new), []
    for key, value in new.items():
        if key not in old:
            carried.built.append(key)
            continue
        kind, ids = new_rows.get(key, (None, None))
        if kind == "ontology":
            continue
        before = old[key]
        if kind is not None and key in old_rows and before.shape[1:] == value.shape[1:]:
            had = {name: i for i, name in enumerate(_names(*old_rows[key], source_graph, source_classes))}
            pairs = [(i, had[name]) for i, name in enumerate(_names(kind, ids, target_graph, target_classes))
                     if name in had]
            if pairs:
                to, frm = torch.tensor(pairs, dtype=torch.long).T
                state[key] = value.clone().index_copy_(0, to, before[frm].to(value.device, value.dtype))
            carried.matched[key] = (len(pairs), len(ids) - len(pairs))
        elif before.shape == value.shape:
            state[key] = before.to(value.device)
            carried.copied.append(key)
        else:
            misfits.append(f"{key} {tuple(before.shape)} -> {tuple(value.shape)}")
    if misfits:
        raise KgnetError(f"{what}: its weights do not fit the model this run builds ({len(misfits)} of other shapes: "
                         f"{'; '.join(misfits[:3])}); keep model.backbone, model.embed_dim and the parts' widths as "
                         "the trained run had them, or train from scratch")
    carried.left = [key for key in old if key not in new]
    target.load_state_dict(state)
    log.info("%s: %s", what, carried.summary())
    return carried
