"""Numbers that reach an API with a limit are bounded in the config; text models are checked offline."""

from __future__ import annotations

import dataclasses
import math
import typing
from pathlib import Path

import pytest

from kgnet.config import INT_LIMIT, Config, load_config
from kgnet.errors import ConfigError, KgnetError
from kgnet.kg.text_features import DEFAULT_TEXT_MODEL, check_text_model

from conftest import run_cli


def error_of(*overrides: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(None, overrides)
    assert isinstance(info.value, KgnetError)
    return str(info.value)


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("train.batch_size=100000000000000000000",
         "train.batch_size must be an integer between 1 and 1048576, got 100000000000000000000"),
        ("train.batch_size=1048577", "train.batch_size must be an integer between 1 and 1048576, got 1048577"),
        ("train.epochs=100000000000000000000000000", "train.epochs must be an integer between 0 and 100000"),
        ("prototype_head.align_epochs=100001",
         "prototype_head.align_epochs must be an integer between 0 and 100000, got 100001"),
        ("graph_encoder.hops=2000000000", "graph_encoder.hops must be an integer between 0 and 64"),
        ("concept_head.hops=65", "concept_head.hops must be an integer between 1 and 64"),
        ("train.min_steps=99999999999", "train.min_steps must be an integer between 0 and 10000000"),
        ("seed=100000000000000000000000", "seed must be an integer between 0 and 4294967295"),
        ("seed=-1", "seed must be an integer between 0 and 4294967295, got -1"),
        ("data.samples_per_class=4294967296",
         f"data.samples_per_class must be an integer between 1 and {INT_LIMIT - 1}"),
        ("infusion.early_stages=[1, 99999999999]", "infusion.early_stages[1] must be an integer"),
        ("prototype_head.temperature=.inf", "prototype_head.temperature must be a finite number, got inf"),
        ("train.lr=1e999", "train.lr must be a finite number, got inf"),
        ("train.weight_decay=.inf", "train.weight_decay must be a finite number, got inf"),
        ("prototype_head.temperature=0", "prototype_head.temperature must be > 0, got 0.0"),
    ],
)
def test_numbers_out_of_range_are_named(arg: str, expected: str) -> None:
    assert error_of(arg).startswith(f"--set {arg}: {expected}")


def test_a_float_for_an_integer_says_the_range() -> None:
    assert error_of("train.batch_size=1e20") == (
        "--set train.batch_size=1e20: train.batch_size expected int, got float 1e+20; "
        "it must be a whole number between 1 and 1048576")
    assert error_of("seed=1e23").endswith("it must be a whole number between 0 and 4294967295")
    assert error_of("train.epochs=2.5") == "--set train.epochs=2.5: train.epochs expected int, got float 2.5"


def test_nan_is_refused_everywhere() -> None:
    for section in dataclasses.fields(Config):
        cls = typing.get_type_hints(Config)[section.name]
        if not dataclasses.is_dataclass(cls):
            continue
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if hints[f.name] is float:
                key = f"{section.name}.{f.name}"
                assert f"{key} must be" in error_of(f"{key}=.nan")


def test_the_edges_of_the_ranges_are_accepted(tmp_path: Path) -> None:
    config = load_config(None, ("train.batch_size=1048576", "train.epochs=100000", "seed=4294967295",
                                "train.min_steps=10000000", "prototype_head.temperature=1e-30"))
    assert (config.train.batch_size, config.train.epochs, config.seed) == (2**20, 100_000, 2**32 - 1)
    path = tmp_path / "config.yaml"
    path.write_text("train:\n  batch_size: 2000000\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"^{path} line 2: train.batch_size must be an integer between 1 and"):
        load_config(path)


def test_the_defaults_fit_their_own_bounds() -> None:
    assert load_config() == Config()
    for section in (Config(), *(getattr(Config(), f.name) for f in dataclasses.fields(Config)
                                if dataclasses.is_dataclass(getattr(Config(), f.name)))):
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            assert not (isinstance(value, float) and not math.isfinite(value))


@pytest.mark.parametrize("arg", ["train.batch_size=100000000000000000000", "prototype_head.temperature=.inf"])
def test_the_cli_exits_2_and_writes_nothing(tmp_path: Path, arg: str) -> None:
    folder = tmp_path / "run"
    result = run_cli("kgnet.train", "--set", arg, "--out", str(folder))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and arg.split("=")[0] in result.stderr
    assert not folder.exists()


def test_the_default_text_model_passes() -> None:
    check_text_model(DEFAULT_TEXT_MODEL)
    check_text_model("sentence-transformers/all-MiniLM-L6-v2")
    check_text_model(Config().graph_encoder.text_model)


def test_an_unknown_text_model_is_refused_without_the_network(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SENTENCE_TRANSFORMERS_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError) as info:
        check_text_model("no-such-sentence-model")
    message = str(info.value)
    assert message.startswith("graph_encoder.text_model: text model 'no-such-sentence-model'")
    assert DEFAULT_TEXT_MODEL in message and "folder" in message
    assert "hf download sentence-transformers/no-such-sentence-model" in message
    with pytest.raises(ConfigError, match=r"^text\.model: no folder"):
        check_text_model(str(tmp_path / "missing"), setting="text.model")
    with pytest.raises(ConfigError, match="holds no sentence-transformers model"):
        check_text_model(str(tmp_path))
    with pytest.raises(ConfigError, match="is empty"):
        check_text_model("")


def test_a_local_folder_or_a_cached_hub_model_passes(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "modules.json").write_text("[]", encoding="utf-8")
    check_text_model(str(folder))
    # a hub model in the cache, laid out as huggingface_hub writes it
    cache = tmp_path / "cache"
    repo = cache / "models--sentence-transformers--all-mpnet-base-v2"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123", encoding="utf-8")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "snapshots" / "abc123" / "modules.json").write_text("[]", encoding="utf-8")
    monkeypatch.setenv("SENTENCE_TRANSFORMERS_HOME", str(cache))
    check_text_model("all-mpnet-base-v2")
    check_text_model("sentence-transformers/all-mpnet-base-v2")
    with pytest.raises(ConfigError):
        check_text_model("all-MiniLM-L12-v2")


def test_a_run_whose_variant_reads_text_checks_the_text_model_first(tmp_path: Path, capsys) -> None:
    """kgnet-prototype reads node text: an unknown text model is refused before anything is made."""
    from kgnet.train import main

    folder = tmp_path / "run"
    code = main(["--set", "variants=[baseline,kgnet-prototype]", "--set",
                 "graph_encoder.text_model=no-such-sentence-model", "--out", str(folder)])
    assert code == 2
    assert "graph_encoder.text_model: text model 'no-such-sentence-model'" in capsys.readouterr().err
    assert not folder.exists()
