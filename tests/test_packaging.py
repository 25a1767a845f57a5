"""An installed wheel carries the shipped ontologies and dataset cards; the CLIs work from any folder.

One wheel is built from the checkout holding this file (CI runs on a fresh clone) into a
temporary folder and installed with `pip install --target`, beside the editable install: the
commands run with PYTHONPATH at that folder, from an unrelated working folder, and use the
venv's dependencies.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import TINY_OVERRIDES, settings

#: The checkout under test: the wheel is built from here, never from an installed copy.
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Installed:
    wheel: Path
    target: Path  # what `pip install --target` filled (PYTHONPATH)
    elsewhere: Path  # an unrelated working folder
    repo_before: frozenset[str]  # the checkout's top-level entries before the build
    repo_after: frozenset[str]

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(self.target)}

    def run(self, *args: str) -> subprocess.CompletedProcess:
        """`python -m ARGS` from `elsewhere`, importing kgnet from the installed wheel."""
        return subprocess.run([sys.executable, *args], cwd=self.elsewhere, env=self.env, capture_output=True,
                              text=True, timeout=300)


def _pip(*args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "pip", *args, "--quiet"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    before = frozenset(p.name for p in REPO.iterdir())
    _pip("wheel", str(REPO), "--no-deps", "--no-build-isolation", "-w", str(root / "dist"))
    after = frozenset(p.name for p in REPO.iterdir())
    wheel = next((root / "dist").glob("kgnet-*.whl"))
    _pip("install", "--no-deps", "--target", str(root / "site"), str(wheel))
    (root / "elsewhere").mkdir()
    return Installed(wheel, root / "site", root / "elsewhere", before, after)


def test_wheel_ships_kg_and_datasets_and_leaves_the_checkout_clean(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for shipped in ["kgnet/_shipped/kg/fashion_mnist.ttl", "kgnet/_shipped/kg/fashion_mnist_garments.ttl",
                    "kgnet/_shipped/kg/README.md", "kgnet/_shipped/datasets/fashion_mnist.yaml",
                    "kgnet/_shipped/datasets/cifar100.yaml"]:
        assert shipped in names
    # Building writes nothing into the checkout (no build/, no *.egg-info, no dist/).
    assert installed.repo_after == installed.repo_before, sorted(installed.repo_after ^ installed.repo_before)


def test_installed_kgnet_is_the_wheel_and_finds_its_card_and_ontology(installed: Installed) -> None:
    code = ("import kgnet, kgnet.data.cards as d, kgnet.paths as p; print(kgnet.__file__); "
            "print(d.load_card('fashion_mnist').ontology); print(p.shipped_dir('kg'))")
    result = installed.run("-c", code)
    assert result.returncode == 0, result.stderr
    package, ontology, kg_dir = (Path(line) for line in result.stdout.splitlines())
    assert package.is_relative_to(installed.target) and not package.is_relative_to(REPO), package
    assert ontology.is_file() and ontology.is_relative_to(installed.target)
    assert kg_dir == installed.target / "kgnet" / "_shipped" / "kg"
    # The CLI, run from an unrelated folder, finds the card and the ontology inside the wheel.
    result = installed.run("-m", "kgnet.kg", "check", str(ontology), "--dataset", "fashion_mnist")
    assert result.returncode == 0, result.stderr
    assert "all 10 classes of fashion_mnist bind" in result.stdout


def test_installed_kg_cli_takes_shipped_ontology_names(installed: Installed) -> None:
    result = installed.run("-m", "kgnet.kg", "info", "fashion_mnist_garments")
    assert result.returncode == 0, result.stderr
    shipped = installed.target / "kgnet" / "_shipped" / "kg" / "fashion_mnist_garments.ttl"
    assert f"ontology   fashion_mnist_garments ({shipped})" in result.stdout
    assert "triples" in result.stdout and "rdfs:subClassOf" in result.stdout
    result = installed.run("-m", "kgnet.kg", "list")
    assert result.returncode == 0, result.stderr
    assert f"fashion_mnist_garments  {shipped}" in result.stdout
    # The repository-relative path of the docs does not exist here; the message names the shipped name.
    result = installed.run("-m", "kgnet.kg", "info", "kg/fashion_mnist.ttl")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "kg/fashion_mnist.ttl: no such file" in result.stderr and "give fashion_mnist" in result.stderr


def test_installed_train_runs_elsewhere(installed: Installed) -> None:
    """A tiny `python -m kgnet.train` (the kgnet variant, its ontology named as a shipped one) from the wheel."""
    out = installed.elsewhere / "run"
    tiny = [o for o in TINY_OVERRIDES if not o.startswith("train.analysis=")]
    result = installed.run("-m", "kgnet.train", *settings(*tiny, "train.analysis=none", "data.test_per_class=5",
                                                          "variants=[kgnet]", "knowledge.ontology=fashion_mnist"),
                           "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "metrics.json").is_file() and (out / "kgnet" / "model.safetensors").is_file()
    assert "Traceback" not in result.stderr
    assert f"from {installed.target / 'kgnet' / '_shipped' / 'kg' / 'fashion_mnist.ttl'}" in result.stderr
