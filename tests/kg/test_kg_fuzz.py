"""A standing fuzz test of the knowledge layer: damaged ontologies get exit 0 or 2, never a traceback.

Seeded mutants (`ontology_mutants.py`) of the shipped ontologies go through
`python -m kgnet.kg check FILE --dataset fashion_mnist` (load, compile, bind to the data set's
classes, cut the k-hop graph; cifar10 and imagewoof mutants bind to their own data sets), called in this process so hundreds of them cost seconds. Each
must end with status 0, or 2 and one `error:` line that names the file (and the line, where
the problem has one); no rdflib log line may leak past kgnet, and nothing may touch the
network. The fast size runs in `make test`; the slow one covers more ontologies and seeds.
"""

from __future__ import annotations

import collections
import socket
from pathlib import Path

import pytest
import rdflib

from conftest import REPO
from ontology_mutants import Mutant, mutants

WHOLE_FILE_PROBLEMS = (
    "the file is empty",
    "holds no triples",
    "binary file",
    "gzip-compressed",
    "cannot bind the dataset's classes",
    "remote @context",
    "which is not an RDF serialisation",
)
"""Errors about a file as a whole, which have no line to name; every other error names one."""

DATASETS = {"cifar10.ttl": "cifar10", "imagewoof.ttl": "imagewoof"}
"""The data set whose classes a mutant binds to (its own ontology's); fashion_mnist otherwise."""


def _sources(folder: Path, *names: str) -> dict[str, bytes]:
    """Shipped ontologies by name, plus the garments ontology in N-Triples, RDF/XML and JSON-LD.

    The other serialisations are written with canonical blank-node labels and kgnet's sorted
    writer, so they, and the mutants made from them, are the same bytes in every process.
    """
    from rdflib.compare import to_canonical_graph

    from kgnet.kg.wordnet import write_graph

    found = {name: (REPO / "kg" / name).read_bytes() for name in names}
    parsed = rdflib.Graph().parse(REPO / "kg" / "fashion_mnist_garments.ttl")
    garments = rdflib.Graph()
    garments += to_canonical_graph(parsed)
    for prefix, namespace in parsed.namespaces():
        garments.bind(prefix, namespace)
    for suffix in (".nt", ".owl", ".jsonld"):
        write_graph(garments, folder / f"garments{suffix}")
        found[f"garments{suffix}"] = (folder / f"garments{suffix}").read_bytes()
    return found


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every attempt to open a connection, refused and recorded (kgnet must never make one)."""
    attempts: list[object] = []

    def refuse(_sock, address, *args):
        attempts.append(address)
        raise OSError("kgnet fuzz test: network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


def _run(mutant: Mutant, folder: Path, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture) -> str:
    """Check one mutant; return 'exit 0' or 'exit 2', or fail with everything needed to reproduce it."""
    from kgnet.kg.__main__ import main

    path = folder / f"mutant{mutant.suffix}"
    path.write_bytes(mutant.data)
    caplog.clear()
    try:
        status = main(["check", str(path), "--dataset", DATASETS.get(mutant.source, "fashion_mnist"), *mutant.args])
    except BaseException as err:  # noqa: BLE001 - anything escaping main() is a kgnet bug
        pytest.fail(f"{mutant.description}: {type(err).__name__}: {err}", pytrace=False)
    err = capsys.readouterr().err
    assert status in (0, 2), f"{mutant.description}: exit {status}\n{err}"
    leaked = [r.getMessage()[:100] for r in caplog.records if r.name.startswith("rdflib")]
    assert not leaked, f"{mutant.description}: rdflib logged {leaked}"
    if status == 2:
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and err.startswith("error:"), f"{mutant.description}:\n{err}"
        assert str(path) in errors[0], f"{mutant.description}: the error does not name the file\n{err}"
        assert f"{path} line " in errors[0] or any(p in errors[0] for p in WHOLE_FILE_PROBLEMS), (
            f"{mutant.description}: the error names no line\n{err}"
        )
    return f"exit {status}"


def _fuzz(sources: dict[str, bytes], count: int, seed: int, folder: Path, capsys, caplog, no_network) -> None:
    outcomes = collections.Counter(_run(m, folder, capsys, caplog) for m in mutants(sources, count, seed))
    assert no_network == [], f"network access attempted: {no_network}"
    with capsys.disabled():  # the counts, for the record (pytest -s, or -rA, shows them)
        print(f"\nfuzz seed {seed}: {count} inputs, exit 0: {outcomes['exit 0']}, exit 2: {outcomes['exit 2']}, "
              f"anything else: {count - outcomes['exit 0'] - outcomes['exit 2']}")
    assert outcomes["exit 0"] + outcomes["exit 2"] == count
    assert outcomes["exit 0"] > 0 and outcomes["exit 2"] > 0  # the mutants are neither all fatal nor all harmless


def test_fuzz_small_ontologies(tmp_path: Path, capsys, caplog, no_network) -> None:
    sources = _sources(tmp_path, "fashion_mnist.ttl", "fashion_mnist_garments.ttl")
    _fuzz(sources, 150, 0, tmp_path, capsys, caplog, no_network)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_fuzz_more_ontologies_and_seeds(tmp_path: Path, seed: int, capsys, caplog, no_network) -> None:
    sources = _sources(tmp_path, "fashion_mnist.ttl", "fashion_mnist_garments.ttl", "cifar10.ttl", "imagewoof.ttl")
    _fuzz(sources, 1500, seed, tmp_path, capsys, caplog, no_network)
