"""The typed config: defaults, YAML files, --set overrides, one clear error per mistake, round trip."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from kgnet.config import (
    Config,
    add_config_arguments,
    config_from_args,
    config_keys,
    config_to_dict,
    load_config,
    save_config,
)
from kgnet.config_docs import render_config_reference
from kgnet.errors import ConfigError, KgnetError

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path | None = None, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    assert isinstance(info.value, KgnetError)
    return str(info.value)


def test_defaults() -> None:
    config = load_config()
    assert config == Config()
    # the embedded demo: 5 images per class, the concept head, a few-shot budget
    assert config.data.name == "fashion_mnist" and config.data.samples_per_class == 5
    assert config.knowledge.scales == ["category", "relation", "wide"] and config.knowledge.head == "concept"
    assert config.train.lr == 5e-4 and config.train.min_steps == 250 and config.variants == ["baseline", "kgnet"]
    # list defaults are not shared between instances
    config.knowledge.scales.append("wide")
    assert Config().knowledge.scales == ["category", "relation", "wide"]


def test_yaml_file_overrides_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, """
data:
  name: cifar10
  samples_per_class: 50
  held_out_classes: [cat, dog]
knowledge:
  scales: [category, wide]
  graph_control: shuffled
train:
  lr: 1e-2          # YAML 1.1 would make this a string
  weight_decay: 0   # int accepted for a float
train.epochs: 7     # dotted keys work in files too
seed: 3
""")
    config = load_config(path)
    assert config.data.name == "cifar10" and config.data.samples_per_class == 50
    assert config.data.held_out_classes == ["cat", "dog"]
    assert config.data.val_fraction == 0.1  # untouched keys keep their defaults
    assert config.knowledge.scales == ["category", "wide"]
    assert config.knowledge.graph_control == "shuffled"
    assert config.train.lr == 0.01 and config.train.epochs == 7 and config.seed == 3
    assert config.train.weight_decay == 0.0 and isinstance(config.train.weight_decay, float)


def test_empty_file_keeps_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "# nothing set\n")) == Config()


@pytest.mark.parametrize(
    ("arg", "attr", "expected"),
    [
        ("train.lr=0.01", ("train", "lr"), 0.01),
        ("train.lr=1e-4", ("train", "lr"), 0.0001),
        ("train.epochs=3", ("train", "epochs"), 3),
        ("model.pretrained=true", ("model", "pretrained"), True),
        ("knowledge.scales=[category,wide]", ("knowledge", "scales"), ["category", "wide"]),
        ("knowledge.scales=[]", ("knowledge", "scales"), []),
        ("data.samples_per_class=null", ("data", "samples_per_class"), None),
        ("data.root=", ("data", "root"), None),
        ("data.root=/data/imgs", ("data", "root"), "/data/imgs"),
        ("knowledge.class_predicate=urn:kgnet:classIndex", ("knowledge", "class_predicate"), "urn:kgnet:classIndex"),
        ("train={lr: 0.5, epochs: 1}", ("train", "lr"), 0.5),
    ],
)
def test_set_overrides(arg: str, attr: tuple[str, str], expected: object) -> None:
    config = load_config(overrides=[arg])
    assert getattr(getattr(config, attr[0]), attr[1]) == expected


def test_set_overrides_apply_after_file_in_order(tmp_path: Path) -> None:
    path = write(tmp_path, "train:\n  lr: 0.5\n  epochs: 2\n")
    config = load_config(path, ["train.lr=0.1", "train.lr=0.2", "seed=9"])
    assert (config.train.lr, config.train.epochs, config.seed) == (0.2, 2, 9)


def test_unknown_key_in_file_names_line_and_suggests(tmp_path: Path) -> None:
    path = write(tmp_path, "data:\n  name: cifar10\ntrain:\n  lrr: 0.1\n")
    assert error_of(path) == f"{path} line 4: unknown key 'train.lrr' (did you mean 'train.lr'?)"


def test_unknown_key_in_wrong_section_suggests_right_one(tmp_path: Path) -> None:
    msg = error_of(write(tmp_path, "seed: 1\nlr: 0.1\n"))
    assert "line 2: unknown key 'lr'" in msg and "did you mean 'train.lr'?" in msg


def test_unknown_key_without_close_match_lists_valid_keys() -> None:
    msg = error_of(overrides=("train.zzzzzzzz=1",))
    assert msg.startswith("--set train.zzzzzzzz=1: unknown key 'train.zzzzzzzz'")
    assert "valid keys in 'train': align_epochs, epochs" in msg


def test_unknown_key_in_set_suggests() -> None:
    assert error_of(overrides=("knowledge.hop=3",)) == (
        "--set knowledge.hop=3: unknown key 'knowledge.hop' (did you mean 'knowledge.hops'?)")


def test_key_below_a_value_is_unknown() -> None:
    assert "unknown key 'train.lr.x'" in error_of(overrides=("train.lr.x=1",))


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("train.epochs=three", "train.epochs expected int, got str 'three'"),
        ("train.epochs=2.5", "train.epochs expected int, got float 2.5"),
        ("train.epochs=true", "train.epochs expected int, got bool True"),
        ("train.lr=fast", "train.lr expected float, got str 'fast'"),
        ("model.pretrained=1", "model.pretrained expected bool, got int 1"),
        ("data.samples_per_class=lots", "data.samples_per_class expected int | null, got str 'lots'"),
        ("data.held_out_classes=cat", "data.held_out_classes expected list[str], got str 'cat'"),
        ("data.held_out_classes=[cat, 3]", "data.held_out_classes[1] expected str, got int 3"),
        ("model.backbone=null", "model.backbone expected str, got null"),
        ("train=5", "'train' must be a mapping of keys to values, got int 5"),
    ],
)
def test_wrong_type_says_expected_and_got(arg: str, expected: str) -> None:
    assert error_of(overrides=(arg,)) == f"--set {arg}: {expected}"


def test_wrong_type_in_file_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "train:\n  epochs: 2\n  batch_size: big\n")
    assert error_of(path) == f"{path} line 3: train.batch_size expected int, got str 'big'"


def test_bad_enum_value_lists_allowed_ones(tmp_path: Path) -> None:
    msg = error_of(write(tmp_path, "knowledge:\n  graph_control: random\n"))
    assert msg.endswith("line 2: knowledge.graph_control must be one of 'none', 'shuffled', 'empty'; got 'random'")
    msg = error_of(overrides=("knowledge.scales=[category, wid]",))
    assert msg == ("--set knowledge.scales=[category, wid]: knowledge.scales[1] must be one of "
                   "'category', 'relation', 'wide'; got 'wid'")
    assert "'fashion_mnist', 'cifar10', 'cifar100', 'imagefolder'" in error_of(overrides=("data.name=mnist",))


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("train.lr=0", "train.lr must be > 0, got 0.0"),
        ("train.epochs=-1", "train.epochs must be >= 0, got -1"),
        ("knowledge.hops=-2", "knowledge.hops must be >= 0, got -2"),
        ("data.val_fraction=1", "data.val_fraction must be in [0, 1), got 1.0"),
        ("data.samples_per_class=0", "data.samples_per_class must be > 0, got 0"),
    ],
)
def test_out_of_range_values(arg: str, expected: str) -> None:
    assert error_of(overrides=(arg,)) == f"--set {arg}: {expected}"


def test_malformed_yaml_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "train:\n  lr: 0.1\n  epochs: [1, 2\nseed: 1\n")
    msg = error_of(path)
    assert msg.startswith(f"{path} line 4: malformed YAML:")


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "train:\n  lr: 0.1\n  lr: 0.2\n")
    assert error_of(path) == f"{path} line 3: key 'train.lr' is set twice"


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- lr\n- 0.1\n")
    assert error_of(path).startswith(f"{path} line 1: the top level must be a mapping")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    assert error_of(path) == f"{path}: config file not found"


def test_set_without_equals_says_expected_form() -> None:
    assert error_of(overrides=("train.lr",)) == "--set train.lr: expected KEY=VALUE, e.g. --set train.lr=0.01"
    assert "expected KEY=VALUE" in error_of(overrides=("=3",))


def test_set_with_malformed_value() -> None:
    assert error_of(overrides=("knowledge.scales=[a,",)).startswith("--set knowledge.scales=[a,: malformed YAML")


def test_round_trip(tmp_path: Path) -> None:
    config = load_config(overrides=[
        "data.name=imagefolder", "data.root=/some where/imgs", "data.held_out_classes=['1e5', 'null', 'yes']",
        "train.lr=1e-7", "knowledge.scales=[wide]", "knowledge.class_predicate=urn:kgnet:classIndex",
        "model.pretrained=true", "data.samples_per_class=10",
    ])
    path = tmp_path / "run" / "config.yaml"
    save_config(config, path)
    assert load_config(path) == config
    assert config_to_dict(load_config(path)) == config_to_dict(config)
    assert [p.name for p in path.parent.iterdir()] == ["config.yaml"]  # no temp file left behind


def test_cli_arguments() -> None:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    args = parser.parse_args(["--set", "seed=4", "--set", "train.epochs=1"])
    config = config_from_args(args)
    assert (config.seed, config.train.epochs) == (4, 1)


def test_every_key_is_documented() -> None:
    reference = render_config_reference()
    for key in config_keys():
        if "." in key or key not in {"data", "model", "knowledge", "train"}:
            assert f"`{key}`" in reference, key


def test_docs_do_not_drift() -> None:
    text = (REPO / "docs" / "config.md").read_text(encoding="utf-8")
    assert text == render_config_reference(), (
        "docs/config.md is stale: run `python -m kgnet.config_docs > docs/config.md`")


def test_knowledge_settings_are_grouped_by_the_part_that_reads_them() -> None:
    """Each knowledge setting names the part of the model that reads it, and the reference lists
    it under that part's heading (the keys stay flat, so saved configs keep loading)."""
    import dataclasses

    from kgnet.config import KNOWLEDGE_PARTS, KnowledgeConfig

    parts = {f.name: f.metadata["part"] for f in dataclasses.fields(KnowledgeConfig)}
    assert set(parts.values()) == set(KNOWLEDGE_PARTS)
    reference = render_config_reference()
    sections = dict(re.findall(r"### (.+?)\n(.*?)(?=\n### |\n## |\Z)", reference.split("## `knowledge`")[1]
                               .split("## `train`")[0], re.S))
    assert list(sections) == [p[0].upper() + p[1:] for p in KNOWLEDGE_PARTS]
    for name, part in parts.items():
        holder = [title for title, body in sections.items() if f"`knowledge.{name}`" in body]
        assert holder == [part[0].upper() + part[1:]], (name, holder)
    assert parts["concept_hops"] == "concept head" and parts["prototype_weight"] == "prototype head"
    assert parts["rgcn_layers"] == "graph encoder" and parts["attention_dim"] == "infusion"
