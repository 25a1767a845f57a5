"""The benchmark suite's machinery: statistics, cell caching and resume, the report, the full suite on tiny data.

Training cells run the real `kgnet.train` on tiny CIFAR-10 files written in the official
format (a few images per class), so each cell takes seconds.
"""

from __future__ import annotations

import io
import json
import math
import re
import sys
from pathlib import Path

import pytest
from PIL import Image

from conftest import REPO, run_cli
from test_data import _write_cifar10

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import report, run, stats  # noqa: E402
from benchmarks.suite import VIT, Cell, Regime, Suite, full_suite, quick_suite  # noqa: E402
from kgnet.errors import ConfigError, DataMissingError  # noqa: E402

TINY_BUDGET = ("data.name=cifar10", "model.backbone=resnet10t", "model.embed_dim=32", "train.batch_size=8",
               "train.align_epochs=1", "train.epochs=1", "data.num_workers=0")
PROGRESS = re.compile(r"^\[(\d+)/(\d+)\] (\S+) (\S+) seed(\d+) \.\.\. (.*)$")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CIFAR-10 python pickles in the official format: 30 training images (3 per class), 10 test."""
    root = tmp_path_factory.mktemp("cifar")
    _write_cifar10(root)
    return root


# ---------------------------------------------------------------------------------------------
# statistics against hand-computed cases


def test_paired_difference_hand_computed() -> None:
    kgnet = {0: 3.0, 1: 5.0, 2: 7.0}
    baseline = {0: 2.0, 1: 3.0, 2: 4.0, 7: 50.0}  # seed 7 has no partner: ignored
    pd = stats.paired_difference(kgnet, baseline)
    assert pd.diffs == (1.0, 2.0, 3.0) and pd.keys == (0, 1, 2)
    assert pd.n == 3 and pd.mean == pytest.approx(2.0) and pd.sd == pytest.approx(1.0)
    assert pd.t == pytest.approx(4.302652729911275)  # t(0.975, 2 df), from a table: 4.303
    half = 4.302652729911275 * 1.0 / math.sqrt(3)
    assert pd.half_width == pytest.approx(half) and half == pytest.approx(2.484, abs=1e-3)
    assert (pd.low, pd.high) == (pytest.approx(2 - half), pytest.approx(2 + half))
    assert not pd.excludes_zero  # [-0.484, 4.484]
    assert report.fmt_diff(pd.to_dict()) == "+2.00 [-0.48, +4.48]"

    s = stats.describe([1.0, 2.0, 3.0, 6.0])
    assert s.n == 4 and s.mean == pytest.approx(3.0) and s.std == pytest.approx(math.sqrt(14 / 3))

    wide = stats.paired_difference({0: 10.0, 1: 13.0}, {0: 7.0, 1: 9.0})  # diffs 3, 4: sd 0.7071
    assert wide.t == pytest.approx(12.706204736)  # t(0.975, 1 df)
    assert wide.low == pytest.approx(3.5 - 12.706204736 * math.sqrt(0.5) / math.sqrt(2))
    assert wide.excludes_zero is False
    tight = stats.paired_difference({0: 5.0, 1: 5.1, 2: 5.2}, {0: 2.0, 1: 2.0, 2: 2.0})
    assert tight.excludes_zero and tight.low > 0


def test_one_pair_has_no_interval() -> None:
    pd = stats.paired_difference({0: 61.0}, {0: 60.0})
    assert pd.n == 1 and pd.mean == pytest.approx(1.0)
    assert pd.sd is None and pd.low is None and pd.high is None and not pd.has_ci
    assert pd.no_ci_reason == "one pair: no interval" and pd.to_dict()["ci95"] is None
    assert report.fmt_diff(pd.to_dict()) == "+1.00 (n=1, no CI)"
    assert stats.describe([5.0]).std is None and report.fmt_summary(stats.describe([5.0]).to_dict()) == "5.00 (n=1)"
    assert stats.paired_difference({0: 1.0}, {1: 1.0}).n == 0


# ---------------------------------------------------------------------------------------------
# cell caching and resume on a two-cell suite


def _tiny_suite(epochs: int = 1) -> Suite:
    budget = tuple(o if not o.startswith("train.epochs=") else f"train.epochs={epochs}" for o in TINY_BUDGET)
    regime = Regime("tiny", "CIFAR-10", 2, budget, "tiny CIFAR-10 budget for the tests", data_kind="cifar10")
    cells = (Cell("tiny", "baseline", 0, overrides=budget), Cell("tiny", "kgnet", 0, overrides=budget))
    return Suite("test", "Test suite", (regime,), cells)


def _execute(suite: Suite, out: Path, root: Path, only: str | None = None) -> list[str]:
    console = io.StringIO()
    assert run.execute(suite, out, only=only, device="cpu", data_root=root, console=console) == 0
    return console.getvalue().splitlines()


def _progress(lines: list[str]) -> dict[str, str]:
    """cell label -> what its progress line says after the dots."""
    found = {}
    for line in lines:
        m = PROGRESS.match(line)
        if m:
            found[f"{m.group(3)}-{m.group(4)}-s{m.group(5)}"] = m.group(6)
    return found


def test_cells_are_cached_rerun_and_cleaned(tmp_path: Path, cifar_root: Path) -> None:
    suite, out = _tiny_suite(), tmp_path / "out"
    first = _progress(_execute(suite, out, cifar_root))
    assert list(first) == ["tiny-baseline-s0", "tiny-kgnet-s0"]
    for text in first.values():
        assert re.fullmatch(r"\d+\.\d% top-1 \(\d+ s\)", text), text
    cells = {c.id: out / "cells" / f"{c.id}.json" for c in suite.cells}
    for cid, path in cells.items():
        record = json.loads(path.read_text())
        assert record["cell"]["id"] == cid and record["cell"]["overrides"] == list(TINY_BUDGET)
        assert 0 <= record["metrics"]["top1"] <= 1 and record["metrics"]["test_images"] == 10
        assert record["wall_seconds"] > 0 and record["machine"]["device"] == "cpu"
        assert record["machine"]["cores"] >= 1 and record["machine"]["torch"]
        assert (out / "runs" / cid / "metrics.json").is_file()
        # training output went to the cell's log, not the console
        assert "kgnet.engine.trainer" in (out / "runs" / f"{cid}.log").read_text()
    assert json.loads(cells["tiny-kgnet-s0"].read_text())["metrics"]["params"]["total"] > \
        json.loads(cells["tiny-baseline-s0"].read_text())["metrics"]["params"]["total"]
    stamps = {cid: (out / "runs" / cid / "metrics.json").stat().st_mtime_ns for cid in cells}
    saved = {cid: path.read_text() for cid, path in cells.items()}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["cells_finished"] == 2 and summary["regimes"]["tiny"]["variants"]["kgnet"]["vs_baseline"]["n"] == 1

    # a second invocation trains nothing
    second = _progress(_execute(suite, out, cifar_root))
    assert all(text.startswith("cached: ") for text in second.values()) and len(second) == 2
    assert {cid: (out / "runs" / cid / "metrics.json").stat().st_mtime_ns for cid in cells} == stamps
    assert {cid: path.read_text() for cid, path in cells.items()} == saved

    # one result deleted: only that cell reruns
    cells["tiny-kgnet-s0"].unlink()
    third = _progress(_execute(suite, out, cifar_root))
    assert third["tiny-baseline-s0"].startswith("cached: ") and not third["tiny-kgnet-s0"].startswith("cached")
    assert (out / "runs" / "tiny-baseline-s0" / "metrics.json").stat().st_mtime_ns == stamps["tiny-baseline-s0"]
    assert (out / "runs" / "tiny-kgnet-s0" / "metrics.json").stat().st_mtime_ns != stamps["tiny-kgnet-s0"]

    # a cell killed half-way: its run folder (here without metrics, with a leftover) is removed and redone
    cells["tiny-baseline-s0"].unlink()
    half = out / "runs" / "tiny-baseline-s0"
    (half / "metrics.json").unlink()
    (half / "leftover.tmp").write_text("half-written")
    fourth = _progress(_execute(suite, out, cifar_root, only="baseline"))
    assert list(fourth) == ["tiny-baseline-s0"] and "top-1 (" in fourth["tiny-baseline-s0"]
    assert not (half / "leftover.tmp").exists() and (half / "metrics.json").is_file()
    assert cells["tiny-baseline-s0"].is_file()

    # a changed definition is not mixed with the old result: the cell reruns
    fifth = _progress(_execute(_tiny_suite(epochs=2), out, cifar_root, only="kgnet"))
    assert fifth["tiny-kgnet-s0"].startswith("(definition changed, rerun)")
    assert json.loads(cells["tiny-kgnet-s0"].read_text())["metrics"]["epochs"] == 3


def test_a_failing_cell_stops_with_its_message(tmp_path: Path, cifar_root: Path) -> None:
    bad = TINY_BUDGET + ("data.held_out_classes=[Unicorn]",)
    suite = Suite("test", "Test", (Regime("tiny", "CIFAR-10", 2, bad, "", data_kind="cifar10"),),
                  (Cell("tiny", "baseline", 0, overrides=bad),))
    with pytest.raises(run.CellFailed, match=r"tiny-baseline-s0: training failed: .*Unicorn"):
        run.execute(suite, tmp_path / "out", device="cpu", data_root=cifar_root, console=io.StringIO())
    assert not (tmp_path / "out" / "cells" / "tiny-baseline-s0.json").exists()


def test_missing_inputs_are_reported_before_training(tmp_path: Path) -> None:
    regime = Regime("tiny", "CIFAR-10", 2, TINY_BUDGET, "", data_kind="cifar10")
    suite = Suite("test", "Test", (regime,), (Cell("tiny", "kgnet-x", 0, "kg/no_such_ontology.ttl", TINY_BUDGET,
                                                   "kgnet"),))
    with pytest.raises(DataMissingError, match="kg/no_such_ontology.ttl: ontology not found"):
        run.execute(suite, tmp_path / "out", device="cpu", console=io.StringIO())
    with pytest.raises(DataMissingError, match=r"imagenette2-160\.tgz"):
        run.data_root_for("imagenette", None)
    with pytest.raises(DataMissingError, match="none of imagewoof2-160"):
        run.data_root_for("imagewoof", tmp_path)
    with pytest.raises(DataMissingError, match="CIFAR-100"):
        run.data_root_for("cifar100", tmp_path)
    (tmp_path / "imagenette2-320" / "train").mkdir(parents=True)
    assert run.data_root_for("imagenette", tmp_path) == tmp_path / "imagenette2-320"
    with pytest.raises(ConfigError, match="matches no cell"):
        run.select(suite, "nothing-like-this")


@pytest.mark.parametrize("args, message", [
    (["--suite", "quick", "--only", "["], "--only '[': not a regular expression"),
    (["--suite", "quick", "--tiny"], "--tiny applies to --suite full"),
    (["--suite", "full", "--tiny", "--data-root", "/no/such/folder", "--only", "cifar10-resnet18-scratch-baseline-s0"],
     "--data-root /no/such/folder: no such folder"),
    (["--suite", "full", "--tiny", "--only", "imagenette-resnet18-scratch-baseline-s0"], "needs --data-root"),
])
def test_cli_bad_input_exits_2(tmp_path: Path, capsys, args: list[str], message: str) -> None:
    assert run.main([*args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


# ---------------------------------------------------------------------------------------------
# the suite definitions


def test_quick_suite_definition() -> None:
    suite = quick_suite()
    ids = [c.id for c in suite.cells]
    assert len(ids) == len(set(ids)) == 3 * 8 * 3 + 2 * 3 + 2
    regimes = [c.regime for c in suite.cells]
    order = [r for i, r in enumerate(regimes) if i == 0 or regimes[i - 1] != r]
    assert order == ["low10", "mid", "zs-mid", "cost", "full"]  # cheap regimes first
    garments = [c for c in suite.cells if c.variant == "kgnet-garments"]
    assert len(garments) == 9 and all(c.train_variant == "kgnet" and c.ontology == "kg/fashion_mnist_garments.ttl"
                                      and "knowledge.ontology=kg/fashion_mnist_garments.ttl" in c.overrides
                                      for c in garments)
    zs = [c for c in suite.cells if c.regime == "zs-mid"]
    assert {c.variant for c in zs} == {"baseline", "kgnet"}
    assert all("data.held_out_classes=[Sandal,Shirt]" in c.overrides for c in zs)
    from kgnet.data.cards import load_card

    assert {"Sandal", "Shirt"} <= set(load_card("fashion_mnist").classes)
    low = next(c for c in suite.cells if c.id == "low10-kgnet-s1")
    assert {"data.samples_per_class=10", "train.align_epochs=30", "train.epochs=30",
            "train.temperature=0.05", "train.analysis=none"} <= set(low.overrides)
    full = next(c for c in suite.cells if c.id == "full-baseline-s2")
    assert {"train.align_epochs=0", "train.epochs=1", "train.batch_size=128"} <= set(full.overrides)
    config = run.cell_config(garments[0], "cpu", None)
    assert config.knowledge.ontology == str(REPO / "kg/fashion_mnist_garments.ttl")  # absolute when run
    assert config.variants == ["kgnet"] and config.seed == 0 and config.data.samples_per_class == 10


def test_full_suite_definition() -> None:
    suite = full_suite()
    assert len({r.name for r in suite.regimes}) == 4 * 2 * 2
    first = [c.id for c in suite.cells[:12]]
    assert all(re.match(r"cifar10-resnet18-(scratch|pretrained)-(baseline|kgnet)-s\d", i) for i in first)
    tiny = full_suite(tiny=True)
    assert [c.id for c in tiny.cells] == [c.id for c in suite.cells]
    assert all("train.epochs=1" in c.overrides for c in tiny.cells if c.kind == "train")
    assert all(c.overrides != t.overrides for c, t in zip(suite.cells, tiny.cells) if c.kind == "train")


# ---------------------------------------------------------------------------------------------
# the report, from hand-written cells (no training)


def _record(suite: Suite, regime: str, variant: str, seed: int, top1: float, **extra: float) -> dict:
    cell = next(c for c in suite.cells if c.id == f"{regime}-{variant}-s{seed}")
    return {"format": run.CELL_FORMAT, "suite": suite.name, "id": cell.id, "cell": cell.to_dict(),
            "regime": suite.regime(regime).to_dict(),
            "metrics": {"top1": top1 / 100, "top5": 0.99, **{k: v / 100 for k, v in extra.items()}},
            "wall_seconds": 30.0, "machine": MACHINE}


MACHINE = {"cpu": "Test CPU 9000", "cores": 2, "torch_threads": 2, "torch": "2.x", "device": "cpu"}
#: top-1 (%) per variant and seed; low10 shows a clear gain, full a tie, the controls sit lower
HAND = {
    "low10": {"baseline": [60, 62, 61], "kgnet": [63, 65, 64.5], "kgnet-category": [61, 63, 62],
              "kgnet-relation": [62, 64, 63], "kgnet-wide": [60.5, 62, 61], "kgnet-shuffled": [61, 62, 61.5],
              "kgnet-randomtext": [60, 62.5, 61], "kgnet-garments": [62, 64, 63.5]},
    "mid": {"baseline": [80, 81, 80.5], "kgnet": [81, 81.5, 81]},
    "full": {"baseline": [90, 90.4, 90.2], "kgnet": [90.1, 90.2, 90.3]},
}


def _write_cells(out: Path, suite: Suite, hand: dict) -> None:
    (out / "cells").mkdir(parents=True, exist_ok=True)
    for regime, variants in hand.items():
        for variant, values in variants.items():
            for seed, value in enumerate(values):
                rec = _record(suite, regime, variant, seed, value)
                (out / "cells" / f"{rec['id']}.json").write_text(json.dumps(rec))
    for seed in range(3):
        for variant, (zs, seen, unseen) in {"baseline": (50, 85, 0), "kgnet": (70 + seed, 84, 20 + seed)}.items():
            h = 2 * seen * unseen / (seen + unseen) if unseen else 0.0
            rec = _record(suite, "zs-mid", variant, seed, 85.0, zero_shot_top1=zs, gzsl_seen=seen,
                          gzsl_unseen=unseen, gzsl_harmonic=h)
            (out / "cells" / f"{rec['id']}.json").write_text(json.dumps(rec))
    timing = {"baseline_median_s": 0.10, "kgnet_median_s": 0.11, "ratio": 1.1, "ratio_of_medians": 1.1}
    model = {"setup": {"backbone": "resnet10t", "device": "cpu"}, "inputs": {"28x28 gray": {
        "train_step": timing, "inference": {**timing, "ratio": 1.04},
        "peak_memory_mb": {"baseline": {"peak_rss_mb": 1000.0}, "kgnet": {"peak_rss_mb": 1050.0}},
        "peak_memory_method": "peak RSS (Linux VmHWM) of a fresh process"}}}
    kg = {"source": "all WordNet 3.0 noun synsets", "file": {"triples": 339897}, "rdflib_parse_seconds": 9.3,
          "graph": {"nodes": 82115, "edges": 93524, "relations": 3}, "cold_compile_seconds": 15.5,
          "warm_load_seconds": 0.32}
    for name, result in (("model-resnet10t", model), ("kg-compile", kg)):
        cell = next(c for c in suite.cells if c.id == f"cost-{name}")
        (out / "cells" / f"{cell.id}.json").write_text(json.dumps(
            {"cell": cell.to_dict(), "result": result, "wall_seconds": 60.0, "machine": MACHINE}))


def test_report_from_hand_written_cells(tmp_path: Path) -> None:
    suite, out, docs = quick_suite(), tmp_path / "quick", tmp_path / "docs"
    _write_cells(out, suite, HAND)
    path = report.write_report([(suite, out), (full_suite(), tmp_path / "full")], docs)
    text = path.read_text()
    assert "generated by python -m benchmarks.run; do not edit" in text
    # low10 kgnet: diffs 3, 3, 3.5 -> mean 3.1667, sd 0.2887, half width 4.3027 * 0.2887 / sqrt(3) = 0.7172
    assert "| kgnet | all scales, WordNet | 64.17 ± 1.04 | 3 | +3.17 [+2.45, +3.88] |  |" in text
    assert "| low10 | 10 | 3 | 61.00 ± 1.00 | 64.17 ± 1.04 | +3.17 [+2.45, +3.88] | kgnet-relation: +2.00" in text
    assert "| kgnet-relation | single scale (best single scale) | 63.00 ± 1.00 |" in text
    # the garments ontology vs WordNet: diffs to kgnet -1, -1, -1 -> sd 0, interval [-1, -1]
    assert "| kgnet-garments | all scales, garments ontology | 63.17 ± 1.04 | 3 | +2.17" in text
    assert "| -1.00 [-1.00, -1.00] |" in text
    assert "| kgnet | 71.00 ± 1.00 | 84.00 ± 0.00 | 21.00 ± 1.00 |" in text  # zero-shot row
    assert "| resnet10t | 28x28 gray | cpu | 0.100 / 0.110 | x1.10 |" in text and "| 1000 / 1050 | x1.05 |" in text
    assert "| 82,115 | 93,524 | 9.30 | 15.50 | 0.320 |" in text
    assert "Machine: Test CPU 9000, 2 cores (2 torch threads), torch 2.x, device cpu (44 cells, 23.0 min)" in text
    assert "**Full-suite results are pending**" in text
    assert "Total wall time: 23.0 min" in text  # 42 cells x 30 s + 2 x 60 s
    assert "**Verdict: goal met.**" in text
    assert "- low-data gain: **met** - low10: kgnet - baseline = +3.17 [+2.45, +3.88] points" in text
    assert "- no loss at full data: **met** - full: kgnet - baseline = +0.00 [-0.43, +0.43]" in text
    assert "- controls lower: **met** - low10: kgnet 64.17; kgnet-shuffled 61.50 is lower" in text
    pngs = sorted(p.name for p in (docs / "benchmarks").glob("*.png"))
    assert pngs == ["quick_ablation.png", "quick_accuracy_vs_size.png", "quick_cost.png", "quick_zero_shot.png"]
    for name in pngs:
        assert f"](benchmarks/{name})" in text
        with Image.open(docs / "benchmarks" / name) as image:
            image.verify()
        with Image.open(docs / "benchmarks" / name) as image:
            assert image.format == "PNG" and image.width > 400 and image.height > 300

    summary = report.aggregate(suite, report.load_records(out))
    low = summary["regimes"]["low10"]["variants"]
    assert low["kgnet"]["vs_baseline"]["diffs"] == [3.0, 3.0, 3.5]
    assert low["kgnet"]["vs_baseline"]["ci95"] == [pytest.approx(3.1667 - 0.7172, abs=1e-3),
                                                  pytest.approx(3.1667 + 0.7172, abs=1e-3)]
    assert summary["verdict"]["met"] is True and summary["cells_finished"] == 24 + 6 + 6 + 6 + 2
    assert len(summary["cells_missing"]) == 80 - summary["cells_finished"]


def test_verdict_follows_the_numbers(tmp_path: Path) -> None:
    suite = quick_suite()
    hand = json.loads(json.dumps(HAND))
    hand["low10"]["kgnet"] = [61, 63, 61.5]  # +1, +1, +0.5: below the +2 goal
    hand["low10"]["kgnet-randomtext"] = [62, 64, 63]  # above kgnet
    hand["full"]["kgnet"] = [88.0, 88.5, 88.2]  # a clear loss
    _write_cells(tmp_path / "quick", suite, hand)
    text = report.write_report([(suite, tmp_path / "quick")], tmp_path / "docs").read_text()
    assert "**Verdict: goal not met.**" in text
    assert "- low-data gain: **not met** - low10: kgnet - baseline = +0.83" in text
    assert "- no loss at full data: **not met** - full: kgnet - baseline = -1.97" in text
    assert "- controls lower: **not met**" in text and "kgnet-randomtext 63.00 is not lower" in text

    only_low = {"low10": {k: v[:1] for k, v in HAND["low10"].items()}}  # one seed: no interval
    _write_cells(tmp_path / "one", suite, only_low)
    verdict = report.aggregate(suite, report.load_records(tmp_path / "one"))["verdict"]
    assert verdict["met"] is False and "one seed gives no interval" in verdict["text"]
    assert "no loss at full data: not measured" in verdict["text"]
    assert verdict["text"].startswith(
        "Verdict: goal not met. low-data gain: not met - low10: kgnet - baseline = +3.00 (n=1, no CI)")


def test_report_without_results_says_pending(tmp_path: Path) -> None:
    text = report.write_report([(quick_suite(), tmp_path / "q"), (full_suite(), tmp_path / "f")],
                               tmp_path / "docs").read_text()
    assert "**Quick-suite results are pending**" in text and "**Full-suite results are pending**" in text
    assert not list((tmp_path / "docs" / "benchmarks").glob("*.png"))


# ---------------------------------------------------------------------------------------------
# the full suite end to end on tiny CIFAR-10, through the command line


def test_full_suite_tiny_end_to_end(tmp_path: Path, cifar_root: Path, capsys) -> None:
    out = tmp_path / "full"
    only = r"^cifar10-resnet18-scratch-(baseline|kgnet)-s0$|^cifar10-vit-scratch-kgnet-s0$|^cost-kg-compile$"
    result = run_cli("benchmarks.run", "--suite", "full", "--tiny", "--data-root", str(cifar_root),
                     "--out", str(out), "--only", only, "--seeds", "0", "--threads", "1")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    progress = [line for line in lines if line.startswith("[")]
    assert [p.split(" ... ")[0] for p in progress] == [
        "[1/4] cifar10-resnet18-scratch baseline seed0", "[2/4] cifar10-resnet18-scratch kgnet seed0",
        "[3/4] cifar10-vit-scratch kgnet seed0", "[4/4] cost kg-compile"]
    assert all(re.search(r"\d+\.\d% top-1 \(\d+ s\)$", p) for p in progress[:3]), progress
    assert re.search(r"nodes: cold \d+\.\d s, cached \d\.\d\d s \(\d+ s\)$", progress[3]), progress[3]
    assert len(lines) == 5 and lines[4].startswith("4 cells run, 0 cached")  # nothing of the training leaks
    assert "INFO" not in result.stderr and "epoch" not in result.stdout
    vit = json.loads((out / "cells" / "cifar10-vit-scratch-kgnet-s0.json").read_text())
    assert f"model.backbone={VIT}" in vit["cell"]["overrides"] and vit["metrics"]["test_images"] == 10
    text = (out / "report" / "benchmarks.md").read_text()
    assert "## Full suite: CIFAR-10/100, Imagenette, ImageWoof (tiny budget)" in text
    assert "| cifar10-resnet18-scratch | n/a | 1 |" in text and "(n=1, no CI)" in text
    assert "Pending: 111 cells" in text and "| kg/cifar100.ttl |" in text
    assert (out / "report" / "benchmarks" / "full_ablation.png").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["budget"] == "tiny" and summary["cells_finished"] == 4
    assert vit["machine"]["torch_threads"] == 1
    assert not (REPO / "benchmarks" / "results" / "full-tiny").exists()  # --out was honoured

    assert run.main(["--suite", "full", "--tiny", "--data-root", str(cifar_root), "--out", str(out), "--only", only,
                     "--seeds", "0", "--threads", "1"]) == 0
    assert capsys.readouterr().out.count("cached: ") == 4
