"""`python -m kgnet.train` end to end on real Fashion-MNIST with tiny budgets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, TINY, run_cli

RUN_FILES = ["config.yaml", "metrics.json", "comparison.txt", "curves.png"]
VARIANT_FILES = ["last.pt", "model.safetensors", "model.json", "log.csv"]


def _metrics(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def _without_timing(metrics: dict) -> dict:
    return {v: {k: x for k, x in m.items() if k not in ("train_seconds", "train_images_per_second")}
            for v, m in metrics.items()}


def test_full_run_writes_every_file(tiny_run) -> None:
    folder, result = tiny_run
    for name in RUN_FILES:
        assert (folder / name).is_file(), name
    for variant in ("baseline", "kgnet"):
        for name in VARIANT_FILES:
            assert (folder / variant / name).is_file(), (variant, name)
    assert "baseline" in result.stdout and "kgnet" in result.stdout and "top-1" in result.stdout
    log_rows = (folder / "kgnet" / "log.csv").read_text().splitlines()
    assert log_rows[0].startswith("epoch,stage,train_loss") and len(log_rows) == 3  # header + 2 epochs
    assert ",1," in log_rows[1] and ",2," in log_rows[2]  # stage 1 then stage 2


def test_metrics_schema(tiny_run) -> None:
    folder, _ = tiny_run
    metrics = _metrics(folder)
    assert list(metrics) == ["baseline", "kgnet"]
    for m in metrics.values():
        assert 0 <= m["top1"] <= 1 and 0 <= m["top5"] <= 1 and m["top5"] >= m["top1"]
        assert len(m["per_class"]) == 10 and all(0 <= a <= 1 for a in m["per_class"].values())
        assert m["train_seconds"] > 0 and m["train_images_per_second"] > 0
        assert m["params"]["total"] > 0
        assert m["mistake_severity"] >= 1 and m["hdist@1"] >= 0 and m["hdist@5"] >= 0  # WordNet hierarchy
    assert metrics["kgnet"]["params"]["total"] > metrics["baseline"]["params"]["total"]
    assert metrics["kgnet"]["params"]["backbone"] == metrics["baseline"]["params"]["backbone"]


def test_release_loads_without_pickle(tiny_run) -> None:
    from kgnet.engine.checkpoint import load_release

    folder, _ = tiny_run
    tensors, meta = load_release(folder / "kgnet")
    assert meta["variant"] == "kgnet" and len(meta["class_names"]) == 10
    assert "text_features" in tensors and any(k.startswith("graph.") for k in tensors)
    assert any(k.startswith("model.") for k in tensors)


def test_held_out_classes_get_zero_shot_numbers(tiny_run) -> None:
    folder, result = tiny_run  # Sandal and Bag are held out
    for metrics in _metrics(folder).values():
        assert 0 <= metrics["zero_shot_top1"] <= 1
        for key in ("gzsl_seen", "gzsl_unseen", "gzsl_harmonic"):
            assert 0 <= metrics[key] <= 1
    assert "zero-shot" in result.stdout


def test_resume_after_kill_matches_uninterrupted(tmp_path: Path) -> None:
    args = ["--set", "data.samples_per_class=100", "--set", "train.align_epochs=1", "--set", "train.epochs=3",
            "--set", "train.batch_size=64", "--set", "model.embed_dim=64", "--set", "variants=[kgnet]"]
    straight = tmp_path / "straight"
    assert run_cli("kgnet.train", *args, "--out", str(straight)).returncode == 0
    killed = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "kgnet.train", *args, "--out", str(killed)],
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = killed / "kgnet" / "last.pt"
    deadline = time.time() + 300
    while not checkpoint.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)  # a real kill: no handler runs, no clean-up
    process.wait()
    assert checkpoint.exists() and not (killed / "metrics.json").exists()
    resumed = run_cli("kgnet.train", "--resume", str(killed))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming after epoch" in resumed.stderr
    assert _without_timing(_metrics(killed)) == _without_timing(_metrics(straight))
    assert _metrics(straight)["kgnet"]["top1"] > 0.5  # 1,000 images, 4 epochs: it learns


def test_torchrun_two_processes_agrees_with_one(tmp_path: Path) -> None:
    args = ["--set", "data.samples_per_class=50", "--set", "train.align_epochs=0", "--set", "train.epochs=2",
            "--set", "train.batch_size=64", "--set", "model.embed_dim=64", "--set", "variants=[baseline]",
            "--set", "train.device=cpu"]
    one = tmp_path / "one"
    assert run_cli("kgnet.train", *args, "--out", str(one)).returncode == 0
    two = tmp_path / "two"
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "kgnet.train", *args, "--out", str(two)],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    a, b = _metrics(one)["baseline"], _metrics(two)["baseline"]
    # Same global batch and steps; only BatchNorm statistics (per process) and summation order differ.
    assert abs(a["top1"] - b["top1"]) < 0.08, (a["top1"], b["top1"])
    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())  # rank 0 wrote alone


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--set", "train.lrr=0.1"], "did you mean 'train.lr'"),
        (["--set", "train.epochs=two"], "train.epochs expected int"),
        (["--set", "variants=[baseline,kgnet-colour]"], "unknown 'kgnet-colour'"),
        (["--set", "data.name=cifar10", "--set", "data.root=/nonexistent"], "CIFAR"),
        (["--set", "data.held_out_classes=[Sandals]"], "Sandal"),
    ],
)
def test_user_errors_exit_2_and_leave_nothing(tmp_path: Path, args: list[str], expected: str) -> None:
    folder = tmp_path / "run"
    result = run_cli("kgnet.train", *args, "--out", str(folder))
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and expected in result.stderr
    assert not folder.exists()


def test_unmapped_classes_in_custom_ontology(tmp_path: Path) -> None:
    ontology = tmp_path / "clothes.ttl"
    ontology.write_text("@prefix ex: <http://example.org/> .\n@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n"
                        'ex:Trouser rdfs:label "trouser" ; rdfs:subClassOf ex:Garment .\n')
    result = run_cli("kgnet.train", "--set", f"knowledge.ontology={ontology}", "--out", str(tmp_path / "run"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "no node for 9 classes" in result.stderr
    assert not (tmp_path / "run").exists()


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path: Path) -> None:
    folder = tmp_path / "nan"
    result = run_cli("kgnet.train", *TINY, "--set", "train.lr=1e30", "--set", "variants=[baseline]",
                     "--out", str(folder))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "the loss became" in result.stderr and "at step" in result.stderr


def test_corrupt_image_in_image_folder_is_named(tmp_path: Path) -> None:
    from PIL import Image

    root = tmp_path / "photos"
    for split, count in (("train", 6), ("val", 2)):
        for name, colour in (("cat", (200, 40, 40)), ("dog", (40, 40, 200))):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                Image.new("RGB", (40, 30), colour).save(folder / f"{i}.png")
    (root / "train" / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    result = run_cli("kgnet.train", "--set", "data.name=imagefolder", "--set", f"data.root={root}",
                     "--set", "data.verify=true", "--set", "variants=[baseline]", "--out", str(tmp_path / "run"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "broken.jpg" in result.stderr
    assert not (tmp_path / "run").exists()


def test_predict_uses_the_safetensors_release_only(tiny_run, tmp_path: Path) -> None:
    import shutil

    from PIL import Image

    from kgnet.data.idx import read_fashion_mnist
    from kgnet.data.cards import load_card

    folder, _ = tiny_run
    release = tmp_path / "release" / "kgnet"
    release.mkdir(parents=True)
    for name in ("model.safetensors", "model.json"):  # no last.pt, no pickle anywhere
        shutil.copy(folder / "kgnet" / name, release / name)
    card = load_card("fashion_mnist")
    arrays = read_fashion_mnist(card.local_paths[0], card.classes)
    image = tmp_path / "item.png"
    Image.fromarray(arrays.test.images[0]).save(image)
    result = run_cli("kgnet.predict", "--run", str(release.parent), "--top-k", "3", str(image))
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0] == f"{image}:" and len([ln for ln in lines if ln.strip().endswith("%")]) == 3
    assert any(name in result.stdout for name in card.classes) and "concepts:" in result.stdout
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    bad = run_cli("kgnet.predict", "--run", str(release.parent), str(broken))
    assert bad.returncode == 2 and "broken.png" in bad.stderr and "Traceback" not in bad.stderr
