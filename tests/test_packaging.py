"""An installed wheel carries the shipped ontologies and dataset cards; the CLIs work from any folder."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import REPO


def test_wheel_ships_kg_and_datasets_and_cli_runs_elsewhere(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
         "--quiet", "-w", str(tmp_path / "dist")],
        check=True, capture_output=True, text=True,
    )
    wheel = next((tmp_path / "dist").glob("kgnet-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in ["kgnet/_shipped/kg/fashion_mnist.ttl", "kgnet/_shipped/kg/README.md",
                    "kgnet/_shipped/datasets/fashion_mnist.yaml", "kgnet/_shipped/datasets/cifar100.yaml"]:
        assert shipped in names
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target), str(wheel)],
        check=True, capture_output=True, text=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = "import kgnet.data.cards as d, kgnet.paths as p; print(d.load_card('fashion_mnist').ontology); print(p.shipped_dir('kg'))"
    result = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    ontology = Path(result.stdout.splitlines()[0])
    assert ontology.is_file() and str(ontology).startswith(str(target))
    # The CLI, run from an unrelated folder, finds the card and the ontology inside the wheel.
    result = subprocess.run(
        [sys.executable, "-m", "kgnet.kg", "check", str(ontology), "--dataset", "fashion_mnist"],
        cwd=elsewhere, env=env, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "all 10 classes of fashion_mnist bind" in result.stdout
