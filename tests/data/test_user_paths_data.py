"""User mistakes in image folders, RDF/XML prologs and subset settings (issue 23).

Symbolic links that lead back into an image folder (relabelled images, endless loops), named
pipes and broken links named like images (which hung training), RDF/XML whose DOCTYPE declares
entities (the "billion laughs" hung `python -m kgnet.kg info`), and the warning of a short
`data.test_per_class` subset, which named the training setting.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from kgnet.config import DataConfig
from kgnet.data.builder import build_datasets
from kgnet.data.imagefolder import scan_image_folder
from kgnet.data.splits import subsample_per_class
from kgnet.errors import KgnetError, OntologyError
from kgnet.kg.load import parse_rdf_file

CLASSES = ("bag", "shoe")


def _tree(root: Path, n_train: int = 2, n_test: int = 1) -> Path:
    for split, n in (("train", n_train), ("val", n_test)):
        for c, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (8, 8), (40 * c, 10 * i, 0)).save(folder / f"{i}.png")
    return root


def _one_line_error(root: Path) -> str:
    with pytest.raises(KgnetError) as err:
        scan_image_folder(root)
    message = str(err.value)
    assert "\n" not in message and len(message) < 400, message
    return message


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=REPO,
                            env=dict(os.environ), timeout=timeout)
    return result


def _assert_user_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


# --- 1. Symbolic links in image folders ---------------------------------------------------------


def test_link_to_parent_in_class_folder_is_refused_not_relabelled(tmp_path: Path) -> None:
    root = _tree(tmp_path / "data")
    (root / "train" / "bag" / "up").symlink_to("..")  # would count shoe's images as bags
    message = _one_line_error(root)
    assert "train/bag" in message and "bag/up" in message and "remove the link" in message
    assert "loop" in message


def test_deep_loop_reported_in_one_short_line(tmp_path: Path) -> None:
    root = _tree(tmp_path / "data")
    (root / "train" / "bag" / "sub").mkdir()
    (root / "train" / "bag" / "sub" / "link").symlink_to("../..")
    message = _one_line_error(root)
    assert "a symbolic link loop at bag/sub/link" in message and "remove the link" in message
    assert "sub/link/sub/link" not in message  # not the path of a walk round the loop


def test_link_to_sibling_class_or_test_split_is_refused(tmp_path: Path) -> None:
    root = _tree(tmp_path / "a")
    (root / "train" / "bag" / "more").symlink_to("../shoe")
    message = _one_line_error(root)
    assert "bag/more points back into the tree" in message and "remove the link" in message
    root = _tree(tmp_path / "b")
    (root / "train" / "bag" / "leak").symlink_to("../../val/bag")  # test images in training
    assert "bag/leak points back into the tree" in _one_line_error(root)
    root = _tree(tmp_path / "c")
    (root / "train" / "bag" / "x.png").symlink_to("../shoe/0.png")  # a shoe image labelled bag
    assert "bag/x.png is a symbolic link to" in _one_line_error(root)
    root = _tree(tmp_path / "d")
    (root / "train" / "bags").symlink_to("bag")  # one folder as two classes
    assert "counted twice" in _one_line_error(root)


def test_links_out_of_the_tree_keep_working(tmp_path: Path) -> None:
    root = _tree(tmp_path / "data")
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "deeper").mkdir(parents=True)
    for name in ("e0.png", "deeper/e1.png", "single.png"):
        Image.new("RGB", (8, 8)).save(elsewhere / name)
    (root / "train" / "bag" / "extra").symlink_to(elsewhere / "deeper")
    (root / "train" / "bag" / "linked.png").symlink_to(elsewhere / "single.png")
    (root / "train" / "shoe" / "more").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(KgnetError, match="counted twice"):  # elsewhere/deeper reached from both classes
        scan_image_folder(root)
    (root / "train" / "shoe" / "more").unlink()
    outside_class = tmp_path / "shoes_on_another_drive"
    outside_class.mkdir()
    Image.new("RGB", (8, 8)).save(outside_class / "s.png")
    (root / "train" / "shoe" / "more").symlink_to(outside_class)
    tree = scan_image_folder(root)
    counts = np.bincount(tree.train_labels, minlength=2).tolist()
    assert counts == [4, 3]  # bag: 2 + extra/e1 + linked; shoe: 2 + more/s
    assert root / "train" / "bag" / "extra" / "e1.png" in tree.train_files
    assert len(set(tree.train_files)) == len(tree.train_files)


def test_loop_outside_the_tree_is_refused(tmp_path: Path) -> None:
    root = _tree(tmp_path / "data")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    Image.new("RGB", (8, 8)).save(elsewhere / "e.png")
    (elsewhere / "again").symlink_to(elsewhere)
    (root / "train" / "bag" / "ext").symlink_to(elsewhere)
    message = _one_line_error(root)
    assert "a symbolic link loop at bag/ext/again" in message


def test_plain_tree_counts_unchanged(tmp_path: Path) -> None:
    root = _tree(tmp_path / "data", n_train=3)
    (root / "train" / "bag" / "nested" / "deep").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(root / "train" / "bag" / "nested" / "deep" / "n.png")
    tree = scan_image_folder(root)
    assert tree.train_labels.tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert tree.train_files == sorted(tree.train_files[:4]) + sorted(tree.train_files[4:])


# --- 2. Named pipes and broken links named like images -------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="this platform has no named pipes (os.mkfifo; Windows), so there is no FIFO to refuse")
def test_fifo_named_like_an_image_is_refused(tmp_path: Path) -> None:
    root = _tree(tmp_path / "data")
    os.mkfifo(root / "train" / "bag" / "x.png")
    message = _one_line_error(root)
    assert "bag/x.png is not a regular file" in message and "remove it" in message


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="this platform has no named pipes (os.mkfifo; Windows), so there is no FIFO to refuse")
def test_fifo_with_verify_exits_2_instead_of_hanging(tmp_path: Path) -> None:
    root = _tree(tmp_path / "data")
    os.mkfifo(root / "train" / "shoe" / "pipe.jpg")
    out = tmp_path / "run"
    result = _cli("kgnet.train", "--set", "data.name=imagefolder", "--set", f"data.root={root}",
                  "--set", "data.verify=true", "--out", str(out))
    line = _assert_user_error(result)
    assert "shoe/pipe.jpg is not a regular file" in line
    assert not out.exists()


def test_broken_link_named_like_an_image_is_named(tmp_path: Path) -> None:
    root = _tree(tmp_path / "data")
    (root / "val" / "shoe" / "gone.png").symlink_to(tmp_path / "deleted.png")
    message = _one_line_error(root)
    assert "shoe/gone.png is a broken symbolic link" in message and "deleted.png" in message


# --- 3. XML entities in RDF/XML ------------------------------------------------------------------

RDF_HEAD = ('<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
            'xmlns:rdfs="http://www.w3.org/2000/01/rdf-schema#">\n')


def _rdfxml(path: Path, doctype: str, label: str) -> Path:
    path.write_text(f'<?xml version="1.0"?>\n{doctype}\n{RDF_HEAD}'
                    f'<rdf:Description rdf:about="http://example.org/a"><rdfs:label>{label}</rdfs:label>'
                    '<rdfs:subClassOf rdf:resource="http://example.org/b"/></rdf:Description>\n</rdf:RDF>\n')
    return path


BILLION_LAUGHS = "<!DOCTYPE rdf:RDF [\n" + '<!ENTITY lol0 "lol">\n' + "".join(
    f'<!ENTITY lol{i} "{("&lol%d;" % (i - 1)) * 10}">\n' for i in range(1, 10)) + "]>"


@pytest.mark.parametrize("suffix", [".rdf", ".owl"])
def test_billion_laughs_refused_fast(tmp_path: Path, suffix: str) -> None:
    path = _rdfxml(tmp_path / f"laughs{suffix}", BILLION_LAUGHS, "&lol9;")
    result = _cli("kgnet.kg", "info", str(path), "--no-cache", timeout=30)  # hung > 120 s before
    line = _assert_user_error(result)
    assert str(path) in line and "declares XML entities (<!ENTITY" in line and "inline them" in line


def test_external_entity_refused_not_emptied(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("content")
    path = _rdfxml(tmp_path / "ext.rdf", f'<!DOCTYPE rdf:RDF [<!ENTITY e SYSTEM "{secret.as_uri()}">]>', "x&e;y")
    with pytest.raises(OntologyError) as err:
        parse_rdf_file(path)
    message = str(err.value)
    assert message.startswith(f"{path} line 2: declares an external XML entity") and "\n" not in message
    path = _rdfxml(tmp_path / "param.rdf", '<!DOCTYPE rdf:RDF [<!ENTITY % p "x">]>', "plain")
    with pytest.raises(OntologyError, match="declares XML entities"):
        parse_rdf_file(path)


def test_entity_blowup_without_nesting_refused(tmp_path: Path) -> None:
    big = "x" * 100_000
    path = _rdfxml(tmp_path / "wide.rdf", f'<!DOCTYPE rdf:RDF [<!ENTITY big "{big}">]>', "&big;" * 2000)
    with pytest.raises(OntologyError, match=r"wide\.rdf: declares XML entities .* would expand the file"):
        parse_rdf_file(path)


def test_protege_namespace_entities_still_read(tmp_path: Path) -> None:
    # Protégé and many published OWL files abbreviate namespaces with flat entities.
    doctype = ('<!DOCTYPE rdf:RDF [\n  <!ENTITY ex "http://example.org/" >\n'
               '  <!ENTITY rdfs "http://www.w3.org/2000/01/rdf-schema#" >\n]>')
    path = tmp_path / "protege.owl"
    path.write_text(f'<?xml version="1.0"?>\n{doctype}\n{RDF_HEAD}'
                    '<rdf:Description rdf:about="&ex;a"><rdfs:label>A</rdfs:label>'
                    '<rdfs:subClassOf rdf:resource="&ex;b"/></rdf:Description>\n</rdf:RDF>\n')
    graph = parse_rdf_file(path)
    assert len(graph) == 2
    assert {str(s) for s in graph.subjects()} == {"http://example.org/a"}


# --- 4. The warning of a short data.test_per_class subset ----------------------------------------


def test_short_subset_warning_names_the_setting(caplog: pytest.LogCaptureFixture) -> None:
    labels = np.array([0, 0, 0, 1])
    with caplog.at_level(logging.WARNING, logger="kgnet.data.splits"):
        subsample_per_class(labels, np.arange(4), 2, 0, ["bag", "shoe"], what="data.test_per_class", split="test")
    assert "data.test_per_class=2" in caplog.text and "fewer test images" in caplog.text
    assert "samples_per_class" not in caplog.text and "training" not in caplog.text
    with pytest.raises(KgnetError, match="data.test_per_class must be > 0"):
        subsample_per_class(labels, np.arange(4), 0, 0, what="data.test_per_class", split="test")


def test_test_per_class_warning_from_build_datasets(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = _tree(tmp_path / "data", n_train=3, n_test=1)
    with caplog.at_level(logging.WARNING, logger="kgnet.data.splits"):
        data = build_datasets(DataConfig(name="imagefolder", root=str(root), val_fraction=0.0,
                                         samples_per_class=None, test_per_class=2), seed=0)
    assert len(data.test) == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("data.test_per_class=2" in w and "fewer test images" in w for w in warnings), warnings
    assert not any("samples_per_class" in w for w in warnings), warnings
