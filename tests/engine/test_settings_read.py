"""Every setting a run is given is read by one of its variants (issue 33): the settings that once
changed nothing for the default kgnet are refused, naming the setting and the variant; a config
file's are one warning; a setting some variants read passes."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from kgnet.config import load_config
from kgnet.engine.settings_read import check_settings_read, settings_read
from kgnet.errors import ConfigError
from kgnet.train import main
from kgnet.variants import VARIANTS

#: The 16 settings that changed nothing for a run of the default kgnet before issue 33 (state
#: dict and logits identical, or never read on its path), where they are now. `knowledge.dropout`
#: became two (the R-GCN's and the infusion's); `knowledge.center_text` and
#: `knowledge.text_control` are no settings any more (`test_gone_settings_say_why`).
ONCE_IGNORED = (
    "graph_encoder.scales=[category]", "graph_encoder.hops=3", "graph_encoder.text_model=no-such-model",
    "graph_encoder.layers=3", "graph_encoder.bases=4", "graph_encoder.dropout=0.2", "infusion.dropout=0.2",
    "infusion.heads=2", "infusion.attention_dim=32", "infusion.early_stages=[2]", "prototype_head.weight=0.3",
    "mlp_head.dropout=0.2", "prototype_head.align_weight=0.5", "prototype_head.temperature=0.2",
    "graph_encoder.lr_scale=0.5", "prototype_head.align_epochs=2",
)


@pytest.mark.parametrize("setting", ONCE_IGNORED)
def test_a_setting_the_default_kgnet_does_not_read_is_refused(setting: str) -> None:
    config = load_config(None, ("variants=[kgnet]", setting))
    with pytest.raises(ConfigError) as info:
        check_settings_read(config, [VARIANTS["kgnet"]])
    message = str(info.value)
    assert message.startswith(f"no variant of this run (kgnet) reads --set {setting} (read by ")
    readers = message.split("(read by ")[1].split(")")[0].split(", ")
    assert readers and all(setting.split("=")[0] in settings_read(config, VARIANTS[r]) for r in readers)
    assert "add a variant that reads it to `variants`, or drop it" in message


def test_gone_settings_say_why() -> None:
    for key in ("knowledge.center_text=false", "knowledge.text_control=off", "knowledge.concept_vectors=graph"):
        with pytest.raises(ConfigError, match="is no longer a setting"):
            load_config(None, (key,))


def test_the_cli_refuses_before_anything_is_made(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "run"
    assert main(["--set", "variants=[baseline,kgnet]", "--set", "infusion.heads=2", "--out", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "no variant of this run (baseline, kgnet) reads --set infusion.heads=2" in err and "Traceback" not in err
    assert not folder.exists()


def test_given_on_the_command_line_even_at_its_default_is_refused() -> None:
    config = load_config(None, ("graph_encoder.layers=2",))  # the default value, but asked for
    with pytest.raises(ConfigError, match="reads --set graph_encoder.layers=2"):
        check_settings_read(config, [VARIANTS["baseline"], VARIANTS["kgnet"]])
    check_settings_read(load_config(None, ()), [VARIANTS["baseline"], VARIANTS["kgnet"]])  # nothing given: fine


def test_a_setting_in_code_is_checked_by_its_value() -> None:
    config = load_config(None, ())
    config.concept_head.hops = 2  # set in code, as the benchmarks build configs
    with pytest.raises(ConfigError, match=r"concept_head.hops=2 \(read by kgnet,"):
        check_settings_read(config, [VARIANTS["kgnet-prototype"]])


def test_a_config_file_may_set_what_other_runs_read(tmp_path: Path, caplog) -> None:
    path = tmp_path / "shared.yaml"
    path.write_text("concept_head:\n  hops: 2\ngraph_encoder:\n  layers: 2\n", encoding="utf-8")
    config = load_config(path, ("variants=[kgnet-prototype]",))
    with caplog.at_level(logging.WARNING, logger="kgnet.engine.settings_read"):
        check_settings_read(config, [VARIANTS["kgnet-prototype"]])
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and f"{path} line 2 (read by kgnet," in warnings[0]
    assert "graph_encoder.layers" not in warnings[0]  # read by kgnet-prototype, and at its default anyway


def test_a_setting_some_variants_read_passes(caplog) -> None:
    config = load_config(None, ("concept_head.hops=2", "mlp_head.dropout=0.2"))
    with caplog.at_level(logging.INFO, logger="kgnet.engine.settings_read"):
        check_settings_read(config, [VARIANTS["baseline"], VARIANTS["kgnet"]])
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "concept_head.hops (read by kgnet only)" in said and "mlp_head.dropout (read by baseline only)" in said


def test_a_scale_ablation_reads_no_scales_setting() -> None:
    config = load_config(None, ("graph_encoder.scales=[category, wide]",))
    assert "graph_encoder.scales" not in settings_read(config, VARIANTS["kgnet-category"])
    assert "graph_encoder.scales" in settings_read(config, VARIANTS["kgnet-prototype"])
    assert "graph_encoder.text_model" not in settings_read(config, VARIANTS["kgnet-relation"])  # no text read
    assert "graph_encoder.text_model" not in settings_read(config, VARIANTS["kgnet-no-text"])
    with pytest.raises(ConfigError, match="no variant of this run .kgnet-category. reads --set graph_encoder.scales"):
        check_settings_read(config, [VARIANTS["kgnet-category"]])
