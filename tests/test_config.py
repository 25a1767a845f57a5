"""The typed config: defaults, YAML files, --set overrides, one clear error per mistake, round trip."""

from __future__ import annotations

import argparse
import dataclasses
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
    assert config.graph_encoder.scales == ["category", "relation", "wide"] and config.concept_head.hops == 3
    assert config.train.lr == 5e-4 and config.train.min_steps == 250 and config.variants == ["baseline", "kgnet"]
    assert config.train.epochs == 3 and config.prototype_head.align_epochs == 1  # 1 alignment + 2 as before
    # list defaults are not shared between instances
    config.graph_encoder.scales.append("wide")
    assert Config().graph_encoder.scales == ["category", "relation", "wide"]


def test_yaml_file_overrides_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, """
data:
  name: cifar10
  samples_per_class: 50
  held_out_classes: [cat, dog]
graph_encoder:
  scales: [category, wide]
infusion.heads: 2
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
    assert config.graph_encoder.scales == ["category", "wide"]
    assert config.infusion.heads == 2
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
        ("graph_encoder.scales=[category,wide]", ("graph_encoder", "scales"), ["category", "wide"]),
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
    assert "valid keys in 'train': epochs, batch_size" in msg


def test_unknown_key_in_set_suggests() -> None:
    assert error_of(overrides=("graph_encoder.hop=3",)) == (
        "--set graph_encoder.hop=3: unknown key 'graph_encoder.hop' (did you mean 'graph_encoder.hops'?)")


def test_a_setting_that_moved_to_its_part_says_where() -> None:
    assert error_of(overrides=("knowledge.rgcn_layers=3",)) == (
        "--set knowledge.rgcn_layers=3: 'knowledge.rgcn_layers' is now 'graph_encoder.layers', in the section of "
        "the part that reads it")
    assert "'train.align_epochs' is now 'prototype_head.align_epochs (train.epochs now counts every epoch" in \
        error_of(overrides=("train.align_epochs=1",))
    assert error_of(overrides=("knowledge.head=prototype",)) == (
        "--set knowledge.head=prototype: 'knowledge.head' is no longer a setting: a variant names its head: choose "
        "`variants` (kgnet, kgnet-composed, kgnet-prototype, ...)")


def test_yaml_reads_documented_values_as_written() -> None:
    """YAML 1.2's core schema, not PyYAML's 1.1: `off`, `no`, `on`, `yes` are words, `1:30` is no
    sexagesimal 90, `010` is ten; `true`/`false` are the booleans and `1e-3` a float."""
    config = load_config(overrides=["data.held_out_classes=[off, no, on, yes]", "train.epochs=010",
                                    "data.augment=false", "train.lr=1e-3"])
    assert config.data.held_out_classes == ["off", "no", "on", "yes"]
    assert config.train.epochs == 10 and config.data.augment is False and config.train.lr == 0.001
    assert error_of(overrides=("train.epochs=1:30",)) == "--set train.epochs=1:30: train.epochs expected int, got str '1:30'"
    assert error_of(overrides=("data.augment=off",)) == "--set data.augment=off: data.augment expected bool, got str 'off'"


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
    msg = error_of(write(tmp_path, "train:\n  analysis: umap\n"))
    assert msg.endswith("line 2: train.analysis must be one of 'tsne', 'pca', 'none'; got 'umap'")
    msg = error_of(overrides=("graph_encoder.scales=[category, wid]",))
    assert msg == ("--set graph_encoder.scales=[category, wid]: graph_encoder.scales[1] must be one of "
                   "'category', 'relation', 'wide'; got 'wid'")
    assert "'fashion_mnist', 'cifar10', 'cifar100', 'imagefolder'" in error_of(overrides=("data.name=mnist",))


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("train.lr=0", "train.lr must be > 0, got 0.0"),
        ("train.epochs=-1", "train.epochs must be >= 0, got -1"),
        ("graph_encoder.hops=-2", "graph_encoder.hops must be >= 0, got -2"),
        ("data.val_fraction=1", "data.val_fraction must be in [0, 1), got 1.0"),
        ("data.samples_per_class=0", "data.samples_per_class must be > 0, got 0"),
        ("graph_encoder.scales=[]", "graph_encoder.scales must be non-empty, got []"),
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
    path = write(tmp_path, "train.lr: 0.1\ntrain:\n  lr: 0.2\n")  # a dotted key and its section
    assert error_of(path) == f"{path} line 3: key 'train.lr' is set twice (also at {path} line 1)"


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
    assert error_of(overrides=("graph_encoder.scales=[a,",)).startswith(
        "--set graph_encoder.scales=[a,: malformed YAML")


def test_round_trip(tmp_path: Path) -> None:
    config = load_config(overrides=[
        "data.name=imagefolder", "data.root=/some where/imgs", "data.held_out_classes=['1e5', 'null', 'yes']",
        "train.lr=1e-7", "graph_encoder.scales=[wide]", "knowledge.class_predicate=urn:kgnet:classIndex",
        "data.held_out_classes=[off, 'true', '1:30', '010']",
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
        if "." in key or not dataclasses.is_dataclass(getattr(Config(), key)):
            assert f"`{key}`" in reference, key


def test_docs_do_not_drift() -> None:
    text = (REPO / "docs" / "config.md").read_text(encoding="utf-8")
    assert text == render_config_reference(), (
        "docs/config.md is stale: run `python -m kgnet.config_docs > docs/config.md`")


def test_each_part_reads_its_own_section() -> None:
    """Every config section of a part is read by a registered part, and the reference documents it
    with the variants that read it."""
    from kgnet.engine.settings_read import PART_SECTIONS
    from kgnet.models import PARTS

    assert set(PART_SECTIONS) == {"mlp_head", "concept_head", "graph_encoder", "infusion", "prototype_head"}
    assert {section for part in PARTS.values() for section in part.sections} == set(PART_SECTIONS)
    reference = render_config_reference()
    for section in PART_SECTIONS:
        assert f"## `{section}`" in reference and "Read by" in reference.split(f"## `{section}`")[1][:400]
