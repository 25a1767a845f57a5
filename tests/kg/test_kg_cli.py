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
    assert status == 2 and "--hops" in err and "-1" in err and "must be 0 to 64" in err
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


# --- Shipped ontologies by name: `list`, `info NAME`, `kgnet:NAME` ---------------------------


def test_resolve_ontology_names_prefix_and_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kgnet.paths import resolve_ontology, shipped_dir, shipped_ontologies

    names = shipped_ontologies()
    assert names == sorted(names) and {"fashion_mnist", "fashion_mnist_garments", "cifar100"} <= set(names)
    assert "README" not in names
    kg_dir = shipped_dir("kg")
    assert resolve_ontology("fashion_mnist_garments") == kg_dir / "fashion_mnist_garments.ttl"
    assert resolve_ontology("kgnet:fashion_mnist") == kg_dir / "fashion_mnist.ttl"
    # An existing path wins over a shipped name, and is returned as it is; kgnet: still means shipped.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fashion_mnist").write_text("@prefix ex: <http://example.org/> .\nex:a ex:p ex:b .\n")
    assert resolve_ontology("fashion_mnist") == Path("fashion_mnist")
    assert resolve_ontology("kgnet:fashion_mnist") == kg_dir / "fashion_mnist.ttl"
    own = tmp_path / "mine.ttl"
    own.write_text("")
    assert resolve_ontology(own) == own and resolve_ontology("mine.ttl") == Path("mine.ttl")
    # A missing path is left to the caller's "no such file" check...
    assert resolve_ontology("sub/missing.owl") == Path("sub/missing.owl")


def test_resolve_ontology_unknown_name_lists_the_shipped_ones() -> None:
    from kgnet.errors import KgnetError, OntologyError
    from kgnet.paths import resolve_ontology, shipped_ontologies

    assert issubclass(OntologyError, KgnetError)
    for value in ("fashion_mnits", "kgnet:fashion_mnits"):
        with pytest.raises(OntologyError) as err:
            resolve_ontology(value, "knowledge.ontology")
        message = str(err.value)
        assert message.startswith(f"knowledge.ontology {value}: ")
        assert ", ".join(shipped_ontologies()) in message and "python -m kgnet.kg list" in message
    # ...unless its file name is a shipped ontology's: the message names the shipped one.
    with pytest.raises(OntologyError, match=r"^/nonexistent/kg/cifar10.ttl: no such file; kgnet ships .*give cifar10"):
        resolve_ontology("/nonexistent/kg/cifar10.ttl")


def _kg_out(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    """`python -m kgnet.kg ARGS` in this process: (exit status, stdout, stderr)."""
    from kgnet.kg.__main__ import main

    status = main(list(args))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return status, captured.out, captured.err


def test_kg_cli_list_and_shipped_names(tmp_path: Path, capsys: pytest.CaptureFixture,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from kgnet.paths import shipped_dir, shipped_ontologies

    monkeypatch.chdir(tmp_path)  # no kg/ folder here
    status, out, _ = _kg_out(capsys, "list")
    assert status == 0
    for name in shipped_ontologies():
        assert f"{name}" in out and str(shipped_dir("kg") / f"{name}.ttl") in out
    status, out, _ = _kg_out(capsys, "list", "--json")
    assert status == 0 and json.loads(out)["fashion_mnist"] == str(shipped_dir("kg") / "fashion_mnist.ttl")
    status, out, _ = _kg_out(capsys, "info", "fashion_mnist_garments")
    assert status == 0
    assert f"ontology   fashion_mnist_garments ({shipped_dir('kg') / 'fashion_mnist_garments.ttl'})" in out
    status, out, _ = _kg_out(capsys, "check", "kgnet:fashion_mnist", "--dataset", "fashion_mnist")
    assert status == 0 and "all 10 classes of fashion_mnist bind to nodes of kgnet:fashion_mnist (" in out
    status, _, err = _kg_out(capsys, "info", "no_such_ontology")
    assert status == 2 and "no_such_ontology: no such file, and kgnet ships no ontology of that name" in err
    assert "fashion_mnist_garments" in err


# --- check --predicate: an absolute IRI that the graph uses ---------------------------------


@pytest.mark.parametrize("predicate", ["label", "my label", "<urn:kgnet:classIndex>", ""])
def test_check_predicate_must_be_an_absolute_iri(predicate: str, capsys: pytest.CaptureFixture) -> None:
    status, _, err = _kg_out(capsys, "check", "fashion_mnist", "--dataset", "fashion_mnist", "--predicate", predicate)
    shown = predicate if predicate and " " not in predicate else repr(predicate)
    assert status == 2 and err.startswith(f"error: --predicate {shown}: not an absolute IRI (e.g. ")
    assert "http://www.w3.org/2000/01/rdf-schema#label" in err


@pytest.mark.parametrize("predicate, why", [
    ("http://example.org/onto#classCode", "no triple in {file} uses this predicate"),
    ("rdfs:label", "a prefixed name such as rdfs:label? give the full IRI"),
    ("urn:kgnet:hasPart", "it only links nodes to nodes here"),
])
def test_check_predicate_that_no_triple_uses(predicate: str, why: str, capsys: pytest.CaptureFixture) -> None:
    ontology = str(REPO / "kg" / "fashion_mnist.ttl")
    status, _, err = _kg_out(capsys, "check", ontology, "--dataset", "fashion_mnist", "--predicate", predicate)
    assert status == 2 and err.startswith(f"error: --predicate {predicate}: ")
    assert why.format(file=ontology) in err and "urn:kgnet:classIndex" in err  # the predicates that would do


def test_check_predicate_that_binds_and_one_that_binds_no_class(capsys: pytest.CaptureFixture) -> None:
    status, out, _ = _kg_out(capsys, "check", "fashion_mnist", "--dataset", "fashion_mnist",
                             "--predicate", "urn:kgnet:classIndex")
    assert status == 0 and "warning: --predicate" not in out
    status, out, _ = _kg_out(capsys, "check", "fashion_mnist", "--dataset", "fashion_mnist",
                             "--predicate", "http://www.w3.org/2000/01/rdf-schema#label")
    assert status == 0 and "warning: --predicate" not in out
    status, out, _ = _kg_out(capsys, "check", "fashion_mnist", "--dataset", "fashion_mnist",
                             "--predicate", "urn:kgnet:lexname")
    assert status == 0 and "warning: --predicate urn:kgnet:lexname: no class's name or index" in out


def test_class_predicate_setting_is_checked_in_binding() -> None:
    from kgnet.errors import ClassMappingError
    from kgnet.kg.build import load_knowledge_graph
    from kgnet.kg.class_mapping import bind_classes

    kg = load_knowledge_graph(REPO / "kg" / "fashion_mnist.ttl")
    with pytest.raises(ClassMappingError, match=r"^knowledge.class_predicate classIndex: not an absolute IRI"):
        bind_classes(kg, ["T-shirt/top"], predicate="classIndex")
    with pytest.raises(ClassMappingError, match=r"^knowledge.class_predicate urn:kgnet:classindex: no triple"):
        bind_classes(kg, ["T-shirt/top"], predicate="urn:kgnet:classindex", source="f.ttl")


def test_train_refuses_an_unknown_ontology_name_before_anything_is_made(tmp_path, capsys) -> None:
    from kgnet.train import main

    assert main(["--set", "knowledge.ontology=fashion_mnist_garmets", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "knowledge.ontology" in err and "fashion_mnist_garments" in err
    assert not (tmp_path / "run").exists()
