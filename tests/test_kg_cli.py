"""`python -m kgnet.kg info | wordnet | check` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import REPO, run_cli


def test_info_json_on_shipped_ontology() -> None:
    result = run_cli("kgnet.kg", "info", str(REPO / "kg" / "cifar10.ttl"), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert {"triples", "nodes", "edges", "relations", "warnings"} <= set(summary)
    assert summary["relations"]["rdfs:subClassOf"] > 0 and summary["classes"] == 10
    assert summary["warnings"] == []


def test_wordnet_export_then_info_and_check(tmp_path: Path) -> None:
    out = tmp_path / "pets.nt.gz"
    result = run_cli("kgnet.kg", "wordnet", "--wnids", "n02084071", "n02121808", "-o", str(out))
    assert result.returncode == 0, result.stderr
    result = run_cli("kgnet.kg", "info", str(out))
    assert result.returncode == 0, result.stderr
    assert "rdfs:subClassOf" in result.stdout and "nodes" in result.stdout
    result = run_cli("kgnet.kg", "check", str(REPO / "kg" / "fashion_mnist.ttl"), "--dataset", "fashion_mnist")
    assert result.returncode == 0, result.stderr
    assert "'gym shoe'" in result.stdout  # Sneaker -> gym_shoe.n.01


def test_wordnet_unknown_wnid_is_a_user_error(tmp_path: Path) -> None:
    result = run_cli("kgnet.kg", "wordnet", "--wnids", "n99999999", "-o", str(tmp_path / "x.ttl"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "n99999999" in result.stderr
    assert not (tmp_path / "x.ttl").exists()
