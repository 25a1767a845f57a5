"""Bad ontologies: one clear message (file, line, what to do), exit 2, no traceback, no network."""

from __future__ import annotations

import gzip
import json
import re
import socket
import threading
from pathlib import Path

import pytest
import rdflib

from conftest import run_cli, run_main
from kgnet.errors import OntologyError
from kgnet.kg.build import load_knowledge_graph

GOOD_TTL = "@prefix ex: <http://example.org/> .\nex:a ex:p ex:b .\n"


def _cli_error(*args: str) -> str:
    result = run_main("kgnet.kg", *args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return result.stderr


def test_malformed_turtle_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.ttl"
    path.write_text(GOOD_TTL + "ex:c ex:p ex:d .\nex:e ex:p ex:f ex:g .\n")
    with pytest.raises(OntologyError, match=r"broken\.ttl line 4, column 16: bad turtle syntax"):
        load_knowledge_graph(path, use_cache=False)
    assert "broken.ttl line 4" in _cli_error("info", str(path))


def test_truncated_rdfxml(tmp_path: Path) -> None:
    path = tmp_path / "cut.owl"
    path.write_text(
        '<?xml version="1.0"?>\n<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about="http://example.org/a">\n'
    )
    message = _cli_error("info", str(path))
    assert "cut.owl line 4" in message and "truncated" in message


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.ttl"
    path.write_text("")
    assert "empty.ttl: the file is empty" in _cli_error("info", str(path))


def test_comment_only_file_has_no_triples(tmp_path: Path) -> None:
    path = tmp_path / "comments.ttl"
    path.write_text("# nothing here yet\n")
    with pytest.raises(OntologyError, match="holds no triples"):
        load_knowledge_graph(path, use_cache=False)


def test_binary_garbage(tmp_path: Path) -> None:
    path = tmp_path / "garbage.ttl"
    path.write_bytes(bytes(range(256)) * 4)
    message = _cli_error("info", str(path))
    assert "garbage.ttl" in message and "binary" in message


def test_gz_that_is_not_gzip(tmp_path: Path) -> None:
    path = tmp_path / "fake.ttl.gz"
    path.write_text(GOOD_TTL)
    assert "not a readable gzip file" in _cli_error("info", str(path))


def test_unknown_suffix_and_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "ontology.xyz"
    path.write_text(GOOD_TTL)
    message = _cli_error("info", str(path))
    assert "'.xyz'" in message and "--format" in message
    assert "unknown RDF format 'klingon'" in _cli_error("info", str(path), "--format", "klingon")
    # The same file reads fine once the format is given.
    assert run_main("kgnet.kg", "info", str(path), "--format", "turtle").returncode == 0


def test_missing_file() -> None:
    assert "no/such/file.ttl: no such file" in _cli_error("info", "no/such/file.ttl")


def test_malformed_ntriples_and_jsonld_name_the_line(tmp_path: Path) -> None:
    nt = tmp_path / "bad.nt"
    nt.write_text("<http://a> <http://p> <http://b> .\n" * 3 + "<http://a> <http://p> .\n")
    assert "bad.nt line 4" in _cli_error("info", str(nt))
    jsonld = tmp_path / "bad.jsonld"
    jsonld.write_text('{"@id": "http://a",\n "http://p": [ }\n')
    assert "bad.jsonld line 2" in _cli_error("info", str(jsonld))


def test_owl_functional_syntax_is_explained(tmp_path: Path) -> None:
    path = tmp_path / "pizza.owl"
    path.write_text("Prefix(:=<http://example.org/pizza#>)\nOntology(<http://example.org/pizza>\n)\n")
    assert "OWL functional syntax" in _cli_error("info", str(path))


class _Listener:
    """A local TCP server that counts the connections made to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture
def listener():
    server = _Listener()
    yield server
    server.close()


def test_no_network_for_imports_contexts_or_entities(tmp_path: Path, listener: _Listener) -> None:
    url = f"http://127.0.0.1:{listener.port}"
    imports = tmp_path / "imports.ttl"
    imports.write_text(
        "@prefix owl: <http://www.w3.org/2002/07/owl#> .\n"
        f"<http://example.org/o> a owl:Ontology ; owl:imports <{url}/base.owl> .\n"
        f"<http://example.org/Dog> <http://www.w3.org/2000/01/rdf-schema#subClassOf> <{url}/Animal> .\n"
    )
    result = run_cli("kgnet.kg", "info", str(imports), "--json", "--no-cache")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert any(f"{url}/base.owl" in w and "not fetched" in w for w in summary["warnings"])

    context = tmp_path / "remote.jsonld"
    context.write_text(json.dumps({"@context": f"{url}/context.jsonld", "@id": "http://example.org/a"}))
    assert "remote @context" in _cli_error("info", str(context))

    entity = tmp_path / "entity.rdf"
    entity.write_text(
        f'<?xml version="1.0"?>\n<!DOCTYPE rdf:RDF [<!ENTITY ext SYSTEM "{url}/entity">]>\n'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns:rdfs="http://www.w3.org/2000/01/rdf-schema#">\n'
        '<rdf:Description rdf:about="http://example.org/a"><rdfs:label>&ext;</rdfs:label>'
        '<rdfs:seeAlso rdf:resource="http://example.org/b"/></rdf:Description>\n</rdf:RDF>\n'
    )
    run_cli("kgnet.kg", "info", str(entity), "--no-cache")
    assert listener.connections == 0


def test_gzipped_malformed_turtle_still_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.ttl.gz"
    path.write_bytes(gzip.compress((GOOD_TTL + "ex:x ex:y .\n").encode()))
    assert "broken.ttl.gz line 3" in _cli_error("info", str(path))


# --- Where and what: every parse error names the line and column, and what to do ------------

GARMENTS = Path(__file__).resolve().parents[2] / "kg" / "fashion_mnist_garments.ttl"


def _location(message: str, path: Path) -> tuple[int, int]:
    """(line, column) from 'PATH line L, column C: ...'; fails the test when they are missing."""
    match = re.search(re.escape(str(path)) + r" line (\d+), column (\d+): ", message)
    assert match, message
    return int(match.group(1)), int(match.group(2))


@pytest.mark.parametrize("cut", [13782, 24837, 7993, 12613, 2630, 17099, 22266])
def test_truncated_turtle_names_line_column_and_says_truncated(tmp_path: Path, cut: int) -> None:
    # These cuts of a real ontology made rdflib raise IndexError ("string index out of range")
    # or AssertionError ("Quote expected in string at ^ in ;"), which reached the user bare.
    data = GARMENTS.read_bytes()[:cut]
    path = tmp_path / "cut.ttl"
    path.write_bytes(data)
    with pytest.raises(OntologyError) as err:
        load_knowledge_graph(path, use_cache=False)
    message = str(err.value)
    line, column = _location(message, path)
    text = data.decode("utf-8")
    assert 1 <= line <= text.count("\n") + 1 and column >= 1
    assert "string index out of range" not in message and "Quote expected" not in message
    assert "truncated" in message


def test_unclosed_string_points_at_its_opening_quote(tmp_path: Path) -> None:
    path = tmp_path / "quote.ttl"
    path.write_text(GOOD_TTL + 'ex:a ex:label "open')  # the end of the file cuts the string
    with pytest.raises(OntologyError) as err:
        load_knowledge_graph(path, use_cache=False)
    assert _location(str(err.value), path) == (3, 15)
    assert "closing quote" in str(err.value)


def test_one_bad_byte_gives_line_and_column_and_is_not_called_binary(tmp_path: Path) -> None:
    text = GOOD_TTL + 'ex:c ex:label "caf\xe9" .\n'
    path = tmp_path / "latin1.ttl"
    path.write_bytes(text.encode("latin-1"))  # one byte 0xe9, not UTF-8
    with pytest.raises(OntologyError) as err:
        load_knowledge_graph(path, use_cache=False)
    message = str(err.value)
    assert _location(message, path) == (3, 19)
    assert "0xe9" in message and "UTF-8" in message
    assert "binary" not in message and "byte 7" not in message


def test_inserted_nul_byte_has_a_location(tmp_path: Path) -> None:
    path = tmp_path / "nul.ttl"
    path.write_bytes((GOOD_TTL + "ex:c ex:p ex:d .\n").replace("ex:d", "ex:\x00d").encode())
    with pytest.raises(OntologyError) as err:
        load_knowledge_graph(path, use_cache=False)
    assert _location(str(err.value), path) == (3, 14)
    assert "NUL" in str(err.value) and "binary" not in str(err.value)


def test_gzip_without_gz_suffix_is_named(tmp_path: Path) -> None:
    path = tmp_path / "packed.ttl"
    path.write_bytes(gzip.compress(GOOD_TTL.encode()))
    with pytest.raises(OntologyError, match=r"gzip.*\.gz"):
        load_knowledge_graph(path, use_cache=False)


def test_rdfxml_parser_errors_name_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.owl"
    path.write_text(
        '<?xml version="1.0"?>\n<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about="http://example.org/a">\n'
        '    <rdf:li rdf:nodeID="not#an#ncname"/>\n'
        "  </rdf:Description>\n</rdf:RDF>\n"
    )
    with pytest.raises(OntologyError) as err:
        load_knowledge_graph(path, use_cache=False)
    assert _location(str(err.value), path)[0] == 4
    assert "None:" not in str(err.value)


def test_wrong_format_prints_one_error_and_no_rdflib_warnings(tmp_path: Path) -> None:
    path = tmp_path / "garments.owl"
    rdflib.Graph().parse(GARMENTS).serialize(path, format="xml")
    result = run_cli("kgnet.kg", "info", str(path), "--format", "turtle", "--no-cache")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error:"), result.stderr
    assert "WARNING" not in result.stderr and "rdflib" not in result.stderr
    assert "RDF/XML" in result.stderr and "--format xml" in result.stderr  # what to do instead


def test_rdflib_warnings_on_a_good_parse_become_kgnet_warnings(tmp_path: Path, caplog) -> None:
    path = tmp_path / "iri.ttl"
    path.write_text("@prefix ex: <http://example.org/> .\nex:a ex:p <http://example.org/has space> .\n")
    with caplog.at_level("DEBUG"):
        kg = load_knowledge_graph(path, use_cache=False)
    assert not [r for r in caplog.records if r.name.startswith("rdflib")]
    assert any("does not look like a valid URI" in w and "iri.ttl" in w for w in kg.warnings)


def test_term_errors_without_a_position_point_at_the_value(tmp_path: Path) -> None:
    # rdflib rejects the language tag while building the literal, after JSON parsing: no
    # position of its own, so the message points at where the tag is written.
    path = tmp_path / "lang.jsonld"
    path.write_text('[\n  {"@id": "http://example.org/a",\n   "http://example.org/p": [{"@value": "x", "@language": "e<>n"}]}\n]\n')
    with pytest.raises(OntologyError) as err:
        load_knowledge_graph(path, use_cache=False)
    assert _location(str(err.value), path) == (3, 59)
    assert "'e<>n' is not a valid language tag" in str(err.value) and "!." not in str(err.value)
