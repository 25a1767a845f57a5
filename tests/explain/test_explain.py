"""`python -m kgnet.explain`: figures, gallery and faithfulness numbers on tiny real runs (the CNN
run's kgnet has the default concept head, the ViT run's kgnet-prototype the attention design),
the deletion/insertion metric on a model whose answer is known, and concept masking."""

from __future__ import annotations

import copy
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import photo_overrides
from kgnet.explain import pipeline
from kgnet.explain.__main__ import main as explain_main
from kgnet.explain.concepts import concept_faithfulness, concept_weights, infusion_blocks
from kgnet.explain.faithfulness import SaliencyOrderPerturbation, deletion_insertion
from kgnet.explain.explanations import EXPLANATIONS
from kgnet.explain.gallery import _faithfulness_section
from kgnet.explain.gradcam import gradcam, reshape_transform, target_layer
from kgnet.explain.pipeline import saliency_scores
from kgnet.explain.road import PERCENTILES, road_scores
from kgnet.figures.explanation import curves_figure
from kgnet.models.infusion import InfusionBlock, masking_keys
from kgnet.release import load_release


@pytest.fixture(scope="module")
def cnn_run(tiny_run) -> Path:
    """resnet10t (the default backbone) on Fashion-MNIST: the session's tiny run."""
    return tiny_run.folder


@pytest.fixture(scope="module")
def vit_run(tmp_path_factory: pytest.TempPathFactory, photo_root: Path) -> Path:
    """timm's smallest ViT (64 wide, 6 blocks; small_input: 4 px patches, a 7x7 grid at 28 px) on
    the session's RGB photo folder of three Fashion-MNIST classes; its knowledge variant is the
    prototype design, whose explanations are attention."""
    from kgnet.config import load_config
    from kgnet.train import run

    folder = tmp_path_factory.mktemp("runs") / "vit"
    overrides = (*photo_overrides(photo_root, "test_vit"), "variants=[baseline,kgnet-prototype]")
    run(load_config(None, overrides), folder, progress=False)
    return folder


class _Sources(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        for key, value in attrs:
            if key in ("src", "href"):
                self.sources.append(value)


@pytest.mark.parametrize("run_fixture, variant", [("cnn_run", "kgnet"), ("vit_run", "kgnet-prototype")])
def test_explain_writes_figures_faithfulness_and_gallery(run_fixture: str, variant: str, request, tmp_path: Path,
                                                         capsys, monkeypatch) -> None:
    run = request.getfixturevalue(run_fixture)
    out = tmp_path / "explain"
    drawn = []  # the curves faithfulness.png draws (the real figure is still written)
    monkeypatch.setattr(pipeline, "curves_figure",
                        lambda path, curves, **kw: drawn.append(sorted(curves)) or curves_figure(path, curves, **kw))
    code = explain_main(["--run", str(run), "--samples", "2", "--faithfulness", "4", "--steps", "8", "--out", str(out),
                         "--variant", variant])
    assert code == 0, capsys.readouterr().err
    # a concept head's curves are its exact class map's, never its vanishing Grad-CAM's
    own = "kgnet exact class map" if variant == "kgnet" else f"{variant} Grad-CAM"
    assert set(drawn[0]) <= {"baseline Grad-CAM", own} and (variant != "kgnet" or own in drawn[0])

    figures = sorted((out / "figures").glob("*.png"))
    assert len(figures) == 2
    for path in figures:
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width > 800 and image.height > 500

    report = json.loads((out / "faithfulness.json").read_text())
    assert report["settings"]["images"] == 4 and report["settings"]["steps"] == 8
    assert set(report["gradcam"]) == {"baseline", variant}
    # the concept head also gets its exact class map, which (unlike its Grad-CAM) never vanishes
    assert set(report["class_map"]) == ({variant} if variant == "kgnet" else set())
    for scores in [*report["gradcam"].values(), *report["class_map"].values()]:
        assert 0.0 <= scores["zero_maps"] <= 1.0
        if scores["deletion"] is None:  # every map zero: no number, the reason instead
            assert "zero everywhere on 4 of 4 images" in scores["not_available"]
            continue
        for metric in ("deletion", "insertion"):
            assert 0.0 <= scores[metric]["mean"] <= 1.0 and scores[metric]["std"] >= 0.0
        assert -1.0 <= scores["road"]["mean"] <= 1.0 and scores["road"]["percentiles"] == list(PERCENTILES)
        assert len(scores["mean_deletion_curve"]) == 9 and scores["images_scored"] >= 1
    if variant == "kgnet":
        assert report["class_map"]["kgnet"]["zero_maps"] == 0.0
    concepts = report["concepts"]
    assert concepts["images"] == 4 and 0.0 <= concepts["fraction_top_greater"] <= 1.0
    for key in ("top_drop_mean", "random_drop_mean"):
        assert np.isfinite(concepts[key])
    if variant == "kgnet":  # the concept head: exact removal, deletion curve, precision
        assert concepts["head"] == "concept" and 0.0 <= concepts["deletion_auc"]["mean"] <= 1.0
        assert len(concepts["mean_deletion_curve"]) >= 3
        assert concepts["precision_images"] <= 4
    else:
        assert "masking" in concepts

    page = (out / "index.html").read_text()
    parser = _Sources()
    parser.feed(page)
    assert len([s for s in parser.sources if s.startswith("figures/")]) >= 2
    for source in parser.sources:
        assert not re.match(r"[a-z]+://|/", source), f"not a relative path: {source}"
        assert (out / source).is_file(), source
    shown = report["class_map"].get(variant) or report["gradcam"][variant]
    assert "deletion AUC" in page and f"{shown['deletion']['mean']:.3f}" in page
    assert f"{shown['road']['mean']:+.3f} &plusmn; {shown['road']['std']:.3f}" in page
    if variant == "kgnet":
        assert "logit points" in page and f"{concepts['deletion_auc']['mean']:.3f}" in page
    # the page opens with what the run scored (its metrics.json), then the images, then the numbers
    metrics = json.loads((run / "metrics.json").read_text())
    assert page.index(f"{100 * metrics[variant]['top1']:.1f}%") < page.index("figures/") < page.index("deletion AUC")
    printed = re.sub(r"\s+", " ", capsys.readouterr().out)
    assert f"{variant} {'class map' if variant == 'kgnet' else 'Grad-CAM'} deletion AUC" in printed
    assert f"ROAD {shown['road']['mean']:+.3f}" in printed


def test_a_zero_map_gets_no_deletion_number_and_the_gallery_says_why(cnn_run: Path) -> None:
    """A map that is zero everywhere orders pixels at random: no AUC is computed from it, and
    the report says why instead of printing a number beside real ones."""
    model = load_release(cnn_run / "kgnet").model.eval()
    images = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    zero = np.zeros((3, 28, 28), np.float32)
    entry, curves = saliency_scores(model, images, zero, [0, 1, 2], steps=4, fill="mean", what="zero")
    assert curves is None and entry["deletion"] is None and entry["insertion"] is None and entry["road"] is None
    assert entry["zero_maps"] == 1.0 and entry["images_scored"] == 0
    assert "zero everywhere on 3 of 3 images" in entry["not_available"]
    partly = zero.copy()
    partly[1, :10] = 1.0  # one real map: only it is scored
    entry, curves = saliency_scores(model, images, partly, [0, 1, 2], steps=4, fill="mean", what="partly")
    assert entry["images_scored"] == 1 and curves["deletion"].shape == (1,)
    assert np.isfinite(entry["road"]["mean"]) and entry["road"]["percentiles"] == list(PERCENTILES)
    assert entry["zero_maps"] == pytest.approx(2 / 3) and "2 of 3 images" in entry["zero_maps_why"]
    report = {"settings": {"images": 3, "steps": 4, "fill_description": "mean"},
              "gradcam": {"baseline": {**saliency_scores(model, images, zero, [0, 1, 2], steps=4, fill="mean",
                                                         what="zero")[0], "layer": "layer4"}},
              "class_map": {"kgnet": entry}}
    page = _faithfulness_section(report, None, EXPLANATIONS["contributions"]().concept_rows)
    assert "not available: the map is zero everywhere on 3 of 3 images" in page
    assert f"{entry['deletion']['mean']:.3f}" in page and "(the 1 images with a non-zero map)" in page
    assert f"{entry['road']['mean']:+.3f}" in page


def test_explain_images_gallery_escapes_names(cnn_run: Path, tmp_path: Path) -> None:
    shoe = tmp_path / "a<b>&shoe.png"
    Image.fromarray((np.random.default_rng(0).random((40, 30)) * 255).astype(np.uint8)).save(shoe)
    out = tmp_path / "explain"
    assert explain_main(["--run", str(cnn_run), "--images", str(shoe), "--out", str(out)]) == 0
    page = (out / "index.html").read_text()
    assert "a&lt;b&gt;&amp;shoe.png" in page and "a<b>" not in page
    assert not (out / "faithfulness.json").exists()  # --images alone: no test-split numbers by default
    assert len(list((out / "figures").glob("*.png"))) == 1


def test_gradcam_layer_and_vit_reshape_come_from_the_model(cnn_run: Path, vit_run: Path) -> None:
    cnn = load_release(cnn_run / "kgnet").model
    assert target_layer(cnn) is cnn.backbone.model.layer4

    release = load_release(vit_run / "kgnet-prototype")
    vit, spec = release.model, release.preprocessing
    backbone = vit.backbone
    # the ViT's head reads its class token, which the patch tokens reach through the last block's
    # attention: Grad-CAM reads the block before it
    assert backbone.pools_prefix_tokens and target_layer(vit) is backbone.model.blocks[-2]
    grid = tuple(backbone.model.patch_embed.grid_size)
    assert grid == (7, 7) and backbone.num_prefix_tokens == 1
    sequence = torch.randn(2, backbone.num_prefix_tokens + 49, backbone.num_features)
    maps = reshape_transform(backbone)(sequence)
    assert maps.shape == (2, backbone.num_features, *grid)
    # patch token k (after the class token) lands at row k // 7, column k % 7
    assert torch.equal(maps[:, :, 2, 5], sequence[:, 1 + 2 * 7 + 5])

    images = torch.randn(3, spec.in_chans, spec.image_size, spec.image_size)
    cams = gradcam(vit, images, [0, 1, 2])
    assert cams.shape == (3, spec.image_size, spec.image_size)
    assert cams.min() >= 0.0 and cams.max() <= 1.0 + 1e-6 and cams.reshape(3, -1).std(axis=1).min() > 0


class _RegionModel(torch.nn.Module):
    """Two classes; class 0's logit is (number of bright pixels in the top-left 3x3) - 4.5."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        present = images[:, 0, :3, :3].sum(dim=(1, 2))
        return torch.stack([present - 4.5, torch.zeros_like(present)], dim=1)


def _trapezoid(y: np.ndarray) -> float:
    return float(((y[1:] + y[:-1]) / 2).sum() / (len(y) - 1))


def test_deletion_insertion_on_a_model_with_a_known_answer() -> None:
    image = torch.ones(1, 1, 8, 8)  # 64 pixels; removed pixels become 0 (the normalised zero)
    right = np.zeros((1, 8, 8), np.float32)
    right[0, :3, :3] = 1.0
    inverted = 1.0 - right
    steps = 64  # one pixel per step

    def p(present: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(present - 4.5)))

    k = np.arange(steps + 1)
    expected = {  # region pixels still present after k steps
        ("right", "deletion"): p(9 - np.minimum(k, 9)),
        ("right", "insertion"): p(np.minimum(k, 9)),
        ("inverted", "deletion"): p(9 - np.clip(k - 55, 0, 9)),
        ("inverted", "insertion"): p(np.clip(k - 55, 0, 9)),
    }
    results = {name: deletion_insertion(_RegionModel(), image, saliency, [0], steps=steps)
               for name, saliency in (("right", right), ("inverted", inverted))}
    for (name, mode), curve in expected.items():
        np.testing.assert_allclose(results[name][f"{mode}_curve"][0], curve, atol=1e-6)
        assert results[name][mode][0] == pytest.approx(_trapezoid(curve), abs=1e-6)
    assert results["right"]["deletion"][0] == pytest.approx(0.0798, abs=1e-3)
    assert results["inverted"]["deletion"][0] == pytest.approx(0.9202, abs=1e-3)
    assert results["right"]["insertion"][0] == pytest.approx(0.9202, abs=1e-3)

    noise = np.random.default_rng(3).random((1, 8, 8)).astype(np.float32)
    random = deletion_insertion(_RegionModel(), image, noise, [0], steps=steps)
    assert results["right"]["deletion"][0] < random["deletion"][0] < results["inverted"]["deletion"][0]
    assert results["right"]["insertion"][0] > random["insertion"][0] > results["inverted"]["insertion"][0]


def test_road_scores_a_map_on_the_evidence_above_one_off_it() -> None:
    """pytorch-grad-cam's ROAD on 1-channel images (Fashion-MNIST's) and RGB alike: removing the
    region the model reads (imputed from its dark surroundings) drops the class, removing the
    rest leaves it."""
    y, x = np.mgrid[:8, :8]
    toward = (14 - y - x).astype(np.float32)  # highest on the top-left region
    maps = np.stack([toward, toward[::-1, ::-1].copy()])  # on the region, then off it
    for channels in (1, 3):
        images = torch.zeros(2, channels, 8, 8)
        images[:, :, :3, :3] = 1.0
        scores = road_scores(_RegionModel(), images, maps, [0, 0], batch_size=1)
        assert scores.shape == (2,) and scores[0] > 0.3 and scores[1] < -0.3
        again = road_scores(_RegionModel(), images, maps, [0, 0], batch_size=1)
        np.testing.assert_array_equal(scores, again)  # the imputation's noise is seeded


def test_each_step_changes_exactly_its_share_of_pixels_even_with_ties() -> None:
    image = torch.ones(1, 10, 10)
    flat = torch.zeros(10, 10)  # every pixel tied: a percentile threshold would remove all or none
    for fraction in (0.0, 0.25, 0.5, 0.93, 1.0):
        deleted = SaliencyOrderPerturbation(fraction, "deletion")(image, flat)
        inserted = SaliencyOrderPerturbation(fraction, "insertion")(image, flat)
        assert int((deleted == 0).sum()) == round(fraction * 100)
        assert int((inserted == 1).sum()) == round(fraction * 100)
    earlier = SaliencyOrderPerturbation(0.3, "deletion")(image, flat) == 0
    later = SaliencyOrderPerturbation(0.6, "deletion")(image, flat) == 0
    assert bool((later | ~earlier).all())  # a removed pixel stays removed


def _toy_block() -> InfusionBlock:
    """One head whose query is fixed, keys = values = the node vectors (weights set by hand)."""
    block = InfusionBlock(token_dim=4, node_dim=4, attn_dim=4, heads=1, dropout=0.0).eval()
    with torch.no_grad():
        block.query.weight.zero_()
        block.query.bias.fill_(1.0)
        block.key_value.weight.copy_(torch.cat([torch.eye(4), torch.eye(4)]))
        block.key_value.bias.zero_()
    return block


def test_masking_a_key_removes_it_from_the_attention() -> None:
    block = _toy_block()
    tokens = torch.randn(2, 3, 4)
    nodes = torch.tensor([[-20.0] * 4,  # logit -40: never attended
                          [1.0, 1.0, 1.0, 1.0],
                          [0.5, -0.5, 0.5, 0.0]])
    with torch.no_grad():
        fused, attention = block(tokens, nodes)
        assert float(attention[..., 0].max()) < 1e-12
        with masking_keys([block], [0]):
            unattended, _ = block(tokens, nodes)
        with masking_keys([block], [1]):
            without_top, masked_attention = block(tokens, nodes)
    assert block.masked_keys is None  # restored on exit
    torch.testing.assert_close(unattended, fused)  # masking a node nobody attends changes nothing
    assert float((without_top - fused).abs().max()) > 0.1  # masking the attended one does
    assert float(masked_attention[..., 1].abs().max()) == 0.0
    torch.testing.assert_close(masked_attention[..., 2], attention[..., 2] / (1 - attention[..., 1]))


def test_masking_every_concept_equals_attending_to_none(vit_run: Path) -> None:
    release = load_release(vit_run / "kgnet-prototype")
    model, spec = release.model, release.preprocessing
    images = torch.randn(4, spec.in_chans, spec.image_size, spec.image_size)
    tokens = len(model.graph_encoder.token_labels)
    with torch.no_grad():
        plain = model(images)
        with masking_keys(infusion_blocks(model), range(tokens)):
            masked = model(images)
        # the same model whose attention contributes zero values: knowledge attended to nothing
        silent = copy.deepcopy(model)
        for block in infusion_blocks(silent):
            half = block.key_value.out_features // 2
            block.key_value.weight[half:].zero_()
            block.key_value.bias[half:].zero_()
        reference = silent(images)
    assert float(masked.attention.abs().max()) == 0.0
    torch.testing.assert_close(masked.logits, reference.logits)
    assert float((masked.logits - plain.logits).abs().max()) > 1e-4

    result = concept_faithfulness(model, images, seed=0)
    np.testing.assert_array_equal(result["top"], concept_weights(plain.attention).argmax(dim=1).numpy())
    assert (result["top"] != result["random"]).all()
    np.testing.assert_allclose(result["probability"], plain.logits.softmax(1).max(1).values.numpy(), rtol=1e-5)
    assert result["top_drop"].shape == result["random_drop"].shape == (4,)


def test_not_a_run_folder_exits_2(tmp_path: Path, capsys) -> None:
    assert explain_main(["--run", str(tmp_path), "--samples", "2"]) == 2
    assert "not a kgnet run folder" in capsys.readouterr().err


def test_unreadable_image_and_unknown_variant_exit_2(cnn_run: Path, tmp_path: Path, capsys) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    assert explain_main(["--run", str(cnn_run), "--images", str(broken), "--out", str(tmp_path / "o")]) == 2
    assert "broken.png: not a readable image" in capsys.readouterr().err
    assert explain_main(["--run", str(cnn_run), "--samples", "1", "--variant", "kgnet-wide"]) == 2
    err = capsys.readouterr().err
    assert "kgnet-wide" in err and "variants there: baseline, kgnet" in err
    assert explain_main(["--run", str(cnn_run), "--samples", "1", "--variant", "baseline", "--baseline", "kgnet"]) == 2
    assert "--variant baseline: this variant has no knowledge tokens" in capsys.readouterr().err
    assert explain_main(["--run", str(cnn_run), "--samples", "1", "--variant", "baseline"]) == 2
    assert "both name 'baseline'" in capsys.readouterr().err
    assert not (cnn_run / "explain").exists()  # nothing written on a user error
