"""Every registered variant and head works end to end (issue 33): built from the registry on the
shipped garments ontology, it trains two steps of the trainer's own step with every parameter
given a non-zero gradient by the second (or the model says which it leaves idle), it is released
and read back to the same logits, and `kgnet.predict` and `kgnet.explain` run on its release. A
new variant, head or control is covered here without this file being edited."""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from kgnet.config import load_config, save_config
from kgnet.config_docs import render_config_reference
from kgnet.data.cards import load_card
from kgnet.data.preprocess import Preprocessing
from kgnet.engine.trainer import EpochTotals, TrainingStep, make_optimizer
from kgnet.errors import KgnetError
from kgnet.kg.build import build_class_graph
from kgnet.kg.text_features import encode_texts
from kgnet.models import PARTS, create_model, graph_hops, parts_of, reads_text
from kgnet.release import load_release, save_release
from kgnet.variants import VARIANTS

pytestmark = pytest.mark.usefixtures("one_thread")

#: A 2x2 token grid and a narrow embedding: cheap, and every part still runs.
SETTINGS = ("model.embed_dim=32", "model.output_stride=16", "train.lr=1e-2")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A run folder (its config.yaml and a test image) that the variants' releases go into."""
    folder = tmp_path_factory.mktemp("registry") / "run"
    folder.mkdir()
    save_config(load_config(None, SETTINGS), folder / "config.yaml")
    pixels = np.zeros((28, 28), np.uint8)
    pixels[6:22, 8:20] = 200  # something on a black background
    Image.fromarray(pixels).save(folder / "image.png")
    return folder


@pytest.fixture(scope="module")
def garments():
    card = load_card("fashion_mnist")
    graphs = {}

    def graph(hops: int):
        if hops not in graphs:
            g = build_class_graph(card.ontology, card.classes, wnids=card.wnids, hops=hops)
            graphs[hops] = (g, encode_texts(g.node_texts, progress=False))
        return graphs[hops]

    return graph


def _release(run: Path, name: str, garments) -> None:
    """Variant `name` trained two steps and released into `run`; asserts what training must give."""
    config = load_config(run / "config.yaml")
    variant = VARIANTS[name]
    graph, texts = garments(max(graph_hops(config, variant), 1))
    texts = texts if reads_text(config, variant) else None
    model = create_model(config, graph, texts, variant=name, in_chans=1, image_size=28)
    optimizer = make_optimizer(model, config.train, torch.device("cpu"))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    step = TrainingStep(model, model.head, optimizer, scheduler, config.train, seen=torch.ones(10, dtype=torch.bool))
    images = torch.randn(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(8)
    model.train()
    step(images, labels, EpochTotals(torch.device("cpu")), 0)  # an alignment epoch where the head has one
    step(images, labels, EpochTotals(torch.device("cpu")), model.head.align_epochs)  # cross-entropy after it
    silent = [n for n, p in model.named_parameters() if p.grad is None or not bool(p.grad.ne(0).any())]
    if model.has_idle_parameters():  # the model says so: only the R-GCN's relation weights over no edges
        assert all(n.endswith((".conv.weight", ".conv.comp")) for n in silent), silent
    else:
        assert silent == [], silent
    save_release(run / name, model.eval(), variant=variant, config=config, class_names=graph.class_names,
                 wnids=None, seen_classes=list(range(10)), unseen_classes=[],
                 preprocessing=Preprocessing(in_chans=1, image_size=28, mean=(0.286,), std=(0.353,)),
                 graph=graph, text_features=texts)
    with torch.no_grad():
        expected = model(images).logits
        again = load_release(run / name).model(images).logits
    torch.testing.assert_close(again, expected, rtol=0, atol=0)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_variant_trains_releases_predicts_and_explains(run: Path, garments, name: str, capsys, caplog) -> None:
    from kgnet.explain.pipeline import explain_run
    from kgnet.predict import main as predict

    variant = VARIANTS[name]
    assert variant.role in ("model", "control", "ablation") and variant.colour and variant.description
    if variant.role != "model":
        assert VARIANTS[variant.of].role == "model"  # measured against a model of the registry
    assert f"| `{name}` | {variant.role}" in render_config_reference()  # the reference lists it
    for needed in ("baseline", "kgnet", name):
        if not (run / needed / "model.json").is_file():
            with caplog.at_level(logging.INFO, logger="kgnet.models.factory"):
                _release(run, needed, garments)
            # the log names the variant built, not only its parts (every control said "kgnet")
            assert f"created {needed} ({', '.join(VARIANTS[needed].parts)})" in caplog.text
    capsys.readouterr()
    assert predict(["--run", str(run), "--variant", name, "--top-k", "2", str(run / "image.png")]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"{run / 'image.png'}:") and printed.count("%") == 2
    model = load_release(run / name).model
    names_concepts = model.head.explains != "gradcam"
    assert ("concepts" in printed) is names_concepts
    if not names_concepts:  # nothing to explain by concepts: refused with one message
        with pytest.raises(KgnetError, match=f"--variant {name}: this variant has no knowledge tokens"):
            explain_run(run, images=[run / "image.png"], variant=name, baseline="kgnet", out=run / f"explain-{name}")
        return
    with contextlib.redirect_stdout(io.StringIO()):
        result = explain_run(run, images=[run / "image.png"], variant=name, out=run / f"explain-{name}",
                             faithfulness=0)
    assert [p.name for p in result.figures] == ["000-image.png"] and (result.out / "index.html").is_file()


def test_every_registered_part_is_in_a_variant_and_keeps_its_contract() -> None:
    used = {part for variant in VARIANTS.values() for part in variant.parts}
    assert used == set(PARTS)
    for name, part in PARTS.items():
        assert part.name == name and part.slot in ("head", "graph_encoder", "infusion")
        assert callable(part.build) and isinstance(part.sections, tuple), name
    for variant in VARIANTS.values():
        slots = parts_of(variant)
        assert slots["head"].slot == "head"
