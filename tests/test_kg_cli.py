"""`python -m kgnet.kg info | wordnet | check` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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


# --- Input checks run first; a failing command leaves its folder as it was -------------------


def _kg(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    """`python -m kgnet.kg ARGS` in this process: (exit status, stderr)."""
    from kgnet.kg.__main__ import main

    try:
        status = main(list(args))
    except SystemExit as exit_:  # argparse's usage errors
        status = exit_.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return status, err


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below `folder` (hidden ones too) with its bytes, and every folder."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else b"<dir>") for p in folder.rglob("*")}


def test_check_rejects_negative_hops(capsys: pytest.CaptureFixture) -> None:
    status, err = _kg(capsys, "check", str(REPO / "kg" / "fashion_mnist.ttl"), "--dataset", "fashion_mnist",
                      "--hops", "-1")
    assert status == 2 and "--hops" in err and "-1" in err and ">= 0" in err
    status, err = _kg(capsys, "check", str(REPO / "kg" / "fashion_mnist.ttl"), "--dataset", "fashion_mnist",
                      "--hops", "two")
    assert status == 2 and "--hops" in err


def test_check_names_the_flag_of_a_missing_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ontology = str(REPO / "kg" / "fashion_mnist.ttl")
    status, err = _kg(capsys, "check", ontology, "--dataset", "fashion_mnist", "--class-map", str(tmp_path / "m.yaml"))
    assert status == 2 and f"--class-map {tmp_path / 'm.yaml'}: no such file" in err
    status, err = _kg(capsys, "info", ontology, "--imports", str(tmp_path))
    assert status == 2 and f"--imports {tmp_path}: is a folder" in err


def test_failed_wordnet_export_leaves_the_folder_as_it_was(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "keep.ttl").write_text("@prefix ex: <http://example.org/> .\nex:a ex:p ex:b .\n")
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "out").mkdir()
    before = _snapshot(tmp_path)
    failing = {
        "-o is a folder": ["--wnids", "n02084071", "-o", str(tmp_path / "out")],
        "-o inside a file": ["--wnids", "n02084071", "-o", str(tmp_path / "a-file" / "sub" / "x.ttl")],
        "unknown suffix": ["--wnids", "n02084071", "-o", str(tmp_path / "new" / "x.txt")],
        "unknown wnid, existing file": ["--wnids", "n99999999", "-o", str(tmp_path / "keep.ttl")],
        "unknown wnid, new folder": ["--wnids", "n99999999", "-o", str(tmp_path / "new" / "sub" / "x.ttl")],
    }
    for case, args in failing.items():
        status, err = _kg(capsys, "wordnet", *args)
        assert status == 2 and err.startswith("error:"), (case, err)
        assert _snapshot(tmp_path) == before, case
        if "unknown wnid" in case:
            assert "n99999999" in err
    assert "a-file is not a folder" in _kg(capsys, "wordnet", *failing["-o inside a file"])[1]
