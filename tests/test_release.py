"""The release (`kgnet.release`): a run trained from timm's pretrained weights is evaluated,
predicted and explained from its release alone, with the network off and the weights gone from
timm's cache; the preprocessing it stores is the pretrained weights' own."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import torch

from conftest import photo_overrides

BACKBONE = "test_resnet"  # timm's tiny ResNet; its pretrained weights live on the Hugging Face hub


def _fake_hub_weights(cache: Path) -> dict[str, torch.Tensor]:
    """Put weights for `BACKBONE` where timm finds cached hub downloads (the Hugging Face cache)."""
    import timm
    from safetensors.torch import save_file

    repo = cache / f"models--{timm.models.get_pretrained_cfg(BACKBONE).hf_hub_id.replace('/', '--')}"
    commit = "0" * 40
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    torch.manual_seed(123)
    weights = {k: v.contiguous() for k, v in timm.create_model(BACKBONE).state_dict().items()}
    save_file(weights, str(snapshot / "model.safetensors"))
    return weights


def test_a_pretrained_run_evaluates_and_predicts_with_no_network(photo_root: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import huggingface_hub.constants as hub

    from kgnet.config import load_config
    from kgnet.evaluate import main as evaluate_main
    from kgnet.predict import main as predict_main
    from kgnet.release import load_release
    from kgnet.train import run

    weights = _fake_hub_weights(tmp_path / "hub")
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)

    def no_network(*args, **kwargs):
        raise AssertionError(f"network access: {args}")

    monkeypatch.setattr(socket.socket, "connect", no_network)

    # No training epochs: the released backbone is exactly what timm loaded from its cache.
    folder = tmp_path / "run"
    config = load_config(None, (*photo_overrides(photo_root, BACKBONE), "model.pretrained=true",
                                "train.epochs=0"))
    trained = run(config, folder, progress=False)
    release = load_release(folder / "kgnet")
    backbone = release.model.backbone.model.state_dict()
    assert all(torch.equal(backbone[k], weights[k]) for k in backbone if k in weights)
    assert release.config.model.pretrained  # recorded as trained
    spec = release.preprocessing  # the pretrained weights' normalisation and crop, from timm's config
    assert spec.mean == (0.5, 0.5, 0.5) and spec.std == (0.5, 0.5, 0.5) and spec.crop_pct == 0.95

    # The weights leave timm's cache: building the model with pretrained weights would now fail.
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "empty"))
    for path in (tmp_path / "hub").rglob("*.safetensors"):
        path.unlink()
    assert evaluate_main(["--run", str(folder), "--projection", "pca"]) == 0
    capsys.readouterr()
    metrics = json.loads((folder / "metrics.json").read_text())
    for name in ("baseline", "kgnet"):
        assert metrics[name]["top1"] == pytest.approx(trained[name]["top1"])
    image = next((photo_root / "test").rglob("*.png"))
    assert predict_main(["--run", str(folder), str(image)]) == 0
    assert capsys.readouterr().out.startswith(f"{image}:")


def test_a_release_of_another_format_is_refused(tiny_run, tmp_path: Path) -> None:
    import shutil

    from kgnet.errors import KgnetError
    from kgnet.release import load_release

    folder = tmp_path / "kgnet"
    shutil.copytree(tiny_run.folder / "kgnet", folder)
    meta = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps({**meta, "format": "kgnet-release-1"}))
    with pytest.raises(KgnetError, match="release format 'kgnet-release-1'.*train the run again"):
        load_release(folder)
    with pytest.raises(KgnetError, match="no model.safetensors"):
        load_release(tmp_path)


def test_a_release_of_an_earlier_format_is_refused_with_what_to_do(tiny_run, tmp_path: Path) -> None:
    """Formats 2 and 3 named every part's settings in one flat `knowledge` section and other weights;
    format 4 (issue 33) is read, they are named and refused: train the run again."""
    import shutil

    from kgnet.errors import KgnetError
    from kgnet.release import FORMAT, load_release

    folder = tmp_path / "kgnet"
    shutil.copytree(tiny_run.folder / "kgnet", folder)
    meta = json.loads((folder / "model.json").read_text())
    assert FORMAT == meta["format"] == "kgnet-release-4" and meta["parts"] == ["concept_head"]
    for old in ("kgnet-release-2", "kgnet-release-3"):
        (folder / "model.json").write_text(json.dumps({**meta, "format": old}))
        with pytest.raises(KgnetError, match=f"release format '{old}', but this kgnet reads 'kgnet-release-4'; "
                                             "train the run again with this version"):
            load_release(folder)
    # a description whose composition is missing is named, not a traceback
    (folder / "model.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "parts"}))
    with pytest.raises(KgnetError, match="not a complete release description"):
        load_release(folder)
    (folder / "model.json").write_text(json.dumps({**meta, "parts": ["no_such_head"]}))
    with pytest.raises(KgnetError, match="its variant cannot be built here .*no model part 'no_such_head'"):
        load_release(folder)