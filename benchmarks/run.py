"""`python -m benchmarks.run`: run a benchmark suite cell by cell, resumably, then write its report.

    python -m benchmarks.run --suite quick --jobs 2             # Fashion-MNIST on a CPU, ~1 hour on 2 cores
    python -m benchmarks.run --suite quick --only '^shot1-'     # only the cells whose id matches
    python -m benchmarks.run --suite quick --report-only        # tables and plots from the saved cells
    python -m benchmarks.run --suite long --jobs 2 --threads 1  # all of Fashion-MNIST, ResNet + ViT, hours
    python -m benchmarks.run --suite full --data-root /data --device cuda
    python -m benchmarks.run --suite full --tiny --data-root /tmp/tiny-cifar --only 'cifar10-resnet18-scratch'
    python -m benchmarks.run --suite full --list                # the cell ids, in running order

Each cell trains one variant for one seed with `kgnet.train.run` (in this process, with the
cell's `Config`, its log in `<out>/runs/<cell id>.log`) into `<out>/runs/<cell id>/`, then saves `<out>/cells/<cell id>.json`:
the variant's metrics, the cell's definition, its wall time and the machine. A cell whose
json exists (with the same definition) is skipped, so a killed suite continues where it
stopped; the run folder of a cell that did not finish is removed and the cell redone. At the
end `<out>/summary.json` holds the aggregates, and the report (`docs/benchmarks.md` with its
PNGs in `docs/benchmarks/`, when `--out` is the suite's default folder; else `<out>/report/`)
is regenerated from every saved cell.

`--jobs N` runs N processes over one queue: each takes the next cell nobody holds (a lock file
`cells/.<cell id>.lock`, released by the kernel if a process dies), and the first process
writes the summary and the report once all have finished. Each process gets `--threads`
torch threads (default: the cores divided by N).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import gc
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Sequence, TextIO

from kgnet.atomic import write_text_atomic
from kgnet.checks import output_folder
from kgnet.cli import user_errors_exit_2
from kgnet.config import Config, load_config
from kgnet.engine.trainer import read_history
from kgnet.errors import ConfigError, DataMissingError, KgnetError

from benchmarks import report as report_mod
from benchmarks.suite import REPO, Cell, Suite, get_suite

RESULTS = REPO / "benchmarks" / "results"
DOCS = REPO / "docs"
CELL_FORMAT = "kgnet-bench-cell/1"

#: Where the ImageFolder data sets are looked for under --data-root (first that exists).
IMAGEFOLDER_DIRS = {
    "imagenette": ("imagenette2-160", "imagenette2-320", "imagenette2"),
    "imagewoof": ("imagewoof2-160", "imagewoof2-320", "imagewoof2"),
}
IMAGEFOLDER_URLS = {
    "imagenette": "https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-160.tgz",
    "imagewoof": "https://s3.amazonaws.com/fast-ai-imageclas/imagewoof2-160.tgz",
}


class CellFailed(KgnetError):
    """A cell's training ended with an error (its log says why)."""


def default_out(suite: str, tiny: bool = False) -> Path:
    return RESULTS / (f"{suite}-tiny" if tiny else suite)


# ---------------------------------------------------------------------------------------------
# the machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: no CUDA device is available here (use --device cpu)")
    return device


def machine_info(device: str) -> dict[str, Any]:
    """What ran a cell: CPU model, cores, threads, torch, device (and GPU name)."""
    import torch

    info: dict[str, Any] = {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                            "torch": torch.__version__, "python": platform.python_version(),
                            "platform": platform.platform(), "device": device}
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    with contextlib.suppress(OSError):
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return info


# ---------------------------------------------------------------------------------------------
# running one cell


@contextlib.contextmanager
def cell_log(log_path: Path) -> Iterator[None]:
    """Send kgnet's log records (and Python warnings) to `log_path` instead of the console."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    handler = logging.FileHandler(log_path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.handlers, root.level = [handler], logging.INFO
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        handler.close()
        root.handlers, root.level = saved_handlers, saved_level


def data_root_for(kind: str, data_root: Path | None) -> Path | None:
    """The `data.root` a cell of data set `kind` gets, or None for kgnet's own search."""
    if kind in IMAGEFOLDER_DIRS:
        if data_root is None:
            raise DataMissingError(
                f"{kind}: the full suite needs --data-root DIR with {IMAGEFOLDER_DIRS[kind][0]}/ in it "
                f"(download {IMAGEFOLDER_URLS[kind]} and unpack it there)")
        for name in IMAGEFOLDER_DIRS[kind]:
            if (data_root / name / "train").is_dir():
                return data_root / name
        raise DataMissingError(
            f"{kind}: none of {', '.join(IMAGEFOLDER_DIRS[kind])} (with a train/ folder) under {data_root}; "
            f"download {IMAGEFOLDER_URLS[kind]} and unpack it into {data_root}")
    if kind in ("cifar10", "cifar100"):
        from kgnet.data.cifar import CIFAR10, CIFAR100, find_cifar

        find_cifar(CIFAR10 if kind == "cifar10" else CIFAR100, data_root)  # says how to get it when missing
    return data_root


def ontology_path(ontology: str) -> Path:
    path = Path(ontology)
    return path if path.is_absolute() else REPO / path


def cell_config(cell: Cell, device: str, root: Path | None) -> Config:
    """The `Config` a training cell runs: its overrides, variant, seed, device and data root."""
    overrides = [f"variants=[{cell.train_variant}]", f"seed={cell.seed}", f"train.device={device}"]
    for item in cell.overrides:
        key, _, value = item.partition("=")
        overrides.append(f"{key}={ontology_path(value)}" if key == "knowledge.ontology" else item)
    if root is not None:
        overrides.append(f"data.root={root}")
    return load_config(None, overrides)


def run_train_cell(cell: Cell, out: Path, device: str, root: Path | None) -> dict[str, Any]:
    """Train the cell in this process (its log in `runs/<id>.log`); its metrics.json entry."""
    from kgnet import train

    run_dir, log_path = out / "runs" / cell.id, out / "runs" / f"{cell.id}.log"
    if run_dir.exists():
        shutil.rmtree(run_dir)  # a cell that did not finish: start it again from nothing
    log_path.unlink(missing_ok=True)
    config = cell_config(cell, device, root)
    with cell_log(log_path):
        try:
            metrics = train.run(config, run_dir, progress=False)
        except KgnetError as err:
            logging.getLogger("benchmarks.run").error("%s", err)
            raise CellFailed(f"cell {cell.id}: training failed: {err}; full log: {log_path}") from None
        finally:
            gc.collect()
    return metrics[cell.train_variant]


def run_extend_cell(cell: Cell, out: Path, device: str, root: Path | None) -> dict[str, Any]:
    """The cell's base run and its extensions (`benchmarks.extension.run_one`, one variant) in
    `runs/<id>/`: one row per k (novel, base, H at the validation-chosen offset, AUSUC, ...)."""
    from benchmarks import extension

    run_dir, log_path = out / "runs" / cell.id, out / "runs" / f"{cell.id}.log"
    if run_dir.exists():
        shutil.rmtree(run_dir)  # a cell that did not finish: start it again from nothing
    log_path.unlink(missing_ok=True)
    overrides = [*cell.overrides, f"train.device={device}", *([f"data.root={root}"] if root is not None else [])]
    with cell_log(log_path), log_path.open("a") as rows_out, contextlib.redirect_stdout(rows_out):
        try:
            rows = extension.run_one(run_dir, cell.seed, list(cell.novel), [cell.train_variant], overrides,
                                     list(cell.shots), list(extension.TUNE))
        except (KgnetError, SystemExit) as err:
            logging.getLogger("benchmarks.run").error("%s", err)
            raise CellFailed(f"cell {cell.id}: {err}; full log: {log_path}") from None
        finally:
            gc.collect()
    return {"rows": rows}


def run_cost_cell(cell: Cell, out: Path, device: str) -> dict[str, Any]:
    """Measure the cost cell; the JSON-ready result."""
    params = cell.params
    log_path = out / "runs" / f"{cell.id}.log"
    log_path.unlink(missing_ok=True)
    with cell_log(log_path):
        if cell.variant.startswith("model-"):
            from benchmarks import model_cost

            label = params["inputs"]
            return model_cost.measure(params["backbone"], {label: model_cost.INPUTS[label]}, int(params["rounds"]),
                                      int(params["batch"]), device)
        if cell.variant == "kg-compile":
            from benchmarks import kg_compile

            if params["source"] == "wordnet-all-nouns":
                return kg_compile.measure(int(params["repeats"]))
            return {**kg_compile.measure(int(params["repeats"]), ontology_path(params["source"])),
                    "source": params["source"]}
    raise ValueError(f"unknown cost cell {cell.variant!r}")


def describe_result(record: dict[str, Any]) -> str:
    """The end of a progress line: `61.2% top-1`, zero-shot numbers, or the cost ratios."""
    if record["cell"]["kind"] == "cost":
        result = record["result"]
        if "inputs" in result:
            r = next(iter(result["inputs"].values()))
            from benchmarks.model_cost import peak_mb

            memory = peak_mb(r["peak_memory_mb"]["kgnet"]) / peak_mb(r["peak_memory_mb"]["baseline"])
            return (f"train step x{r['train_step']['ratio']:.2f}, inference x{r['inference']['ratio']:.2f}, "
                    f"peak memory x{memory:.2f}")
        return (f"{result['graph']['nodes']:,} nodes: cold {result['cold_compile_seconds']:.1f} s, "
                f"cached {result['warm_load_seconds']:.2f} s")
    if record["cell"]["kind"] == "extend":
        return "; ".join(f"k={r['k']}: novel {100 * r['novel']:.0f}%, H {100 * r['H']:.0f}%, AUSUC {r['ausuc']:.3f}"
                         for r in record["result"]["rows"])
    m = record["metrics"]
    text = f"{100 * m['top1']:.1f}% top-1"
    if "zero_shot_top1" in m:
        text += f", {100 * m['zero_shot_top1']:.1f}% zero-shot, GZSL H {100 * m['gzsl_harmonic']:.1f}%"
    return text


def cached_record(path: Path, cell: Cell) -> tuple[dict[str, Any] | None, str]:
    """The saved result of `cell`, or None and why it must (re)run."""
    if not path.is_file():
        return None, ""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return None, "unreadable result, rerun"
    if not isinstance(record, dict):
        return None, "not a cell's result, rerun"
    if record.get("cell") != cell.to_dict():
        return None, "definition changed, rerun"
    return record, ""


# ---------------------------------------------------------------------------------------------
# the suite


def select(suite: Suite, only: str | None) -> list[Cell]:
    if not only:
        return list(suite.cells)
    try:
        pattern = re.compile(only)
    except re.error as err:
        raise ConfigError(f"--only {only!r}: not a regular expression ({err})") from None
    cells = [c for c in suite.cells if pattern.search(c.id)]
    if not cells:
        raise ConfigError(f"--only {only!r} matches no cell of the {suite.name} suite; "
                          f"`python -m benchmarks.run --suite {suite.name} --list` shows the ids")
    return cells


def preflight(suite: Suite, cells: list[Cell], data_root: Path | None) -> dict[str, Path | None]:
    """Check every input the pending cells need before training anything; data roots by regime."""
    problems: list[str] = []
    roots: dict[str, Path | None] = {}
    if data_root is not None and not data_root.is_dir():
        raise DataMissingError(f"--data-root {data_root}: no such folder")
    for cell in cells:
        if cell.kind == "cost":
            continue
        regime = suite.regime(cell.regime)
        if regime is not None and regime.name not in roots:
            try:
                roots[regime.name] = data_root_for(regime.data_kind, data_root)
            except DataMissingError as err:
                roots[regime.name] = None
                if str(err) not in problems:
                    problems.append(str(err))
        if cell.ontology and not ontology_path(cell.ontology).is_file():
            message = (f"{cell.ontology}: ontology not found; the {cell.variant} cells need it "
                       f"(leave them out with --only '^(?!.*{cell.variant})')")
            if message not in problems:
                problems.append(message)
    if problems:
        raise DataMissingError("; ".join(problems))
    return roots


def claim_cell(out: Path, cell: Cell) -> int | None:
    """A descriptor holding `cells/.<id>.lock` (the cell is this process's), or None when another
    process of the same queue holds it."""
    path = out / "cells" / f".{cell.id}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        os.close(fd)
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None
        raise
    return fd


#: The most processes (`--jobs`) and torch threads per process (`--threads`) a run starts.
MAX_JOBS, MAX_THREADS = 64, 1024


def worker_log(out: Path, number: int) -> Path:
    return out / "runs" / f"worker{number}.log"


def start_workers(argv: list[str], out: Path, jobs: int) -> list[subprocess.Popen]:
    """Processes 2..jobs of a `--jobs` run: the same command as workers (no report), logging to
    `runs/worker<N>.log`."""
    (out / "runs").mkdir(parents=True, exist_ok=True)
    workers = []
    for number in range(2, jobs + 1):
        with open(worker_log(out, number), "w") as log:
            workers.append(subprocess.Popen([sys.executable, "-m", "benchmarks.run", *argv, "--worker"],
                                            stdout=log, stderr=subprocess.STDOUT, cwd=REPO))
    return workers


def release_cell(out: Path, cell: Cell, fd: int) -> None:
    (out / "cells" / f".{cell.id}.lock").unlink(missing_ok=True)  # while held: no one else holds this inode
    os.close(fd)


def execute(suite: Suite, out: Path, *, only: str | None = None, device: str = "cpu",
            data_root: Path | None = None, report_dir: Path | None = None,
            report_sections: list[tuple[Suite, Path]] | None = None, console: TextIO | None = None,
            report: bool = True, workers: list[subprocess.Popen] | None = None) -> int:
    """Run the (selected) cells of `suite` into `out`, skipping finished ones and those another
    process of the queue holds; then (with `report`, once the `workers` have ended) summary and report."""
    console = console or sys.stdout
    cells = select(suite, only)
    (out / "cells").mkdir(parents=True, exist_ok=True)
    pending = [c for c in cells if cached_record(out / "cells" / f"{c.id}.json", c)[0] is None]
    roots = preflight(suite, pending, data_root)
    device = resolve_device(device)
    started = time.perf_counter()
    ran = 0
    for i, cell in enumerate(cells, 1):
        path = out / "cells" / f"{cell.id}.json"
        head = f"[{i}/{len(cells)}] {cell.label} ... "
        record, why = cached_record(path, cell)
        if record is not None:
            print(f"{head}cached: {describe_result(record)}", file=console, flush=True)
            continue
        held = claim_cell(out, cell)
        if held is None:
            print(f"{head}running in another process", file=console, flush=True)
            continue
        try:
            record, why = cached_record(path, cell)  # finished by another process before the claim
            if record is not None:
                print(f"{head}done by another process: {describe_result(record)}", file=console, flush=True)
                continue
            print(head + (f"({why}) " if why else ""), end="", file=console, flush=True)
            start = time.perf_counter()
            try:
                if cell.kind == "train":
                    result_key, result = "metrics", run_train_cell(cell, out, device,
                                                                   roots.get(cell.regime, data_root))
                elif cell.kind == "extend":
                    result_key, result = "result", run_extend_cell(cell, out, device,
                                                                   roots.get(cell.regime, data_root))
                else:
                    result_key, result = "result", run_cost_cell(cell, out, device)
            except KeyboardInterrupt:
                print("interrupted (rerun to continue)", file=console, flush=True)
                raise
            except BaseException:
                print("failed", file=console, flush=True)
                raise
            wall = time.perf_counter() - start
            _save_record(suite, cell, path, result_key, result, wall, device, cell_history(out, cell))
        finally:
            release_cell(out, cell, held)
        ran += 1
        print(f"{describe_result(json.loads(path.read_text()))} ({wall:.0f} s)", file=console, flush=True)
    failed = [i for i, worker in enumerate(workers or (), 2) if worker.wait() != 0]
    logs = ", ".join(str(worker_log(out, i)) for i in failed)
    unfinished = [c.id for c in cells if cached_record(out / "cells" / f"{c.id}.json", c)[0] is None]
    if failed and unfinished:
        raise CellFailed(f"other processes of the queue failed, and {len(unfinished)} cells have no result "
                         f"({', '.join(unfinished[:3])}{', ...' if len(unfinished) > 3 else ''}); their logs: {logs}")
    if failed:  # e.g. killed after the last cell was saved: every result is there, so the report is written
        print(f"other processes of the queue ended badly ({logs}), but every cell has its result", file=console,
              flush=True)
    if not report:
        return 0
    records = report_mod.load_records(out)
    summary = report_mod.aggregate(suite, records)
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    sections = report_sections or [(suite, out)]
    report_dir = report_dir or out / "report"
    markdown = report_mod.write_report(sections, report_dir)
    elapsed = time.perf_counter() - started
    print(f"{ran} cells run here, {len(cells) - ran} cached or run by other processes ({elapsed / 60:.1f} min "
          f"end to end); summary: {out / 'summary.json'}; report: {markdown}", file=console, flush=True)
    if summary.get("verdict"):
        print(summary["verdict"]["text"], file=console, flush=True)
    return 0


def cell_history(out: Path, cell: Cell) -> list[dict[str, float]] | None:
    """A training cell's epoch rows (its `log.csv`: losses, train and validation top-1, lr, seconds),
    kept in its record so the report can draw learning curves without the (uncommitted) run folder."""
    if cell.kind != "train":
        return None
    return [{k: round(v, 6) for k, v in row.items()}
            for row in read_history(out / "runs" / cell.id / cell.train_variant / "log.csv")]


def _save_record(suite: Suite, cell: Cell, path: Path, result_key: str, result: dict, wall: float,
                 device: str, history: list[dict[str, float]] | None = None) -> None:
    regime = suite.regime(cell.regime)
    record = {
        "format": CELL_FORMAT, "suite": suite.name, "budget": suite.budget, "id": cell.id,
        "cell": cell.to_dict(), "regime": regime.to_dict() if regime else None,
        result_key: result, "wall_seconds": round(wall, 2), "machine": machine_info(device),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "run_folder": f"runs/{cell.id}" if cell.kind != "cost" else None,
    }
    if history is not None:
        record["history"] = history
    write_text_atomic(path, json.dumps(record, indent=2) + "\n")


def report_only(sections: list[tuple[Suite, Path]], suite: Suite, out: Path, report_dir: Path,
                console: TextIO | None = None) -> int:
    console = console or sys.stdout
    if not (out / "cells").is_dir():
        print(f"no saved cells in {out / 'cells'}: the {suite.name} section says its results are pending",
              file=console)
    else:
        summary = report_mod.aggregate(suite, report_mod.load_records(out))
        write_text_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    markdown = report_mod.write_report(sections, report_dir)
    print(f"report: {markdown}", file=console)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("--suite", choices=("quick", "full", "ablation", "long"), required=True)
    parser.add_argument("--out", metavar="DIR", help="results folder (default benchmarks/results/<suite>)")
    parser.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                        help="seeds of every regime (default: each suite's own; the quick suite's extend and shot "
                             "regimes take all of them, its others the first two)")
    parser.add_argument("--only", metavar="REGEX", help="run only the cells whose id matches (re.search)")
    parser.add_argument("--report-only", action="store_true", help="write summary and report from saved cells")
    parser.add_argument("--list", action="store_true", help="print the cell ids in running order and exit")
    parser.add_argument("--tiny", action="store_true",
                        help="full suite: every budget shrunk to seconds (checks the machinery on tiny data)")
    parser.add_argument("--data-root", metavar="DIR",
                        help="folder holding the data sets (cifar-10-batches-py/, cifar-100-python/, "
                             "imagenette2-160/, imagewoof2-160/); default: kgnet's own search")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:N or auto (default: cpu for quick, "
                                                       "auto for full)")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="torch CPU threads (default: torch's, i.e. the cores; on a machine shared with "
                             "other jobs 1 can be many times faster than oversubscribed cores)")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="processes sharing the queue of cells (default 1; 2 on a 2-core machine)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # a --jobs process: no report
    parser.add_argument("--report", metavar="DIR", help="report folder (default docs/ for the default --out, "
                                                        "else <out>/report)")
    return parser


@user_errors_exit_2
def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.tiny and args.suite != "full":
        raise ConfigError("--tiny applies to --suite full (the quick suite's budget is its point)")
    if args.seeds and len(set(args.seeds)) != len(args.seeds):
        raise ConfigError(f"--seeds: each seed once, got {args.seeds}")
    if not 1 <= args.jobs <= MAX_JOBS:
        raise ConfigError(f"--jobs must be 1 to {MAX_JOBS} (processes training cells at once), got {args.jobs}")
    if args.threads is not None and not 1 <= args.threads <= MAX_THREADS:
        raise ConfigError(f"--threads must be 1 to {MAX_THREADS}, got {args.threads}")
    threads = args.threads if args.threads is not None else (
        max(1, (os.cpu_count() or 1) // args.jobs) if args.jobs > 1 else None)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    seeds = tuple(args.seeds) if args.seeds else None
    suite = get_suite(args.suite, seeds, tiny=args.tiny)
    if args.list:
        for cell in select(suite, args.only):
            print(cell.id)
        return 0
    out = output_folder(Path(args.out) if args.out else default_out(args.suite, args.tiny), "--out",
                        must_be_empty=False)
    is_default = out.resolve() == default_out(args.suite).resolve()
    if is_default and args.tiny:
        raise ConfigError(f"--tiny results must not mix with the real ones in {out}; pick another --out")
    report_dir = Path(args.report) if args.report else (DOCS if is_default else out / "report")
    if is_default:  # the committed report covers every suite from their default folders
        sections = [(get_suite(name, seeds) if name == args.suite else get_suite(name),
                     default_out(name)) for name in ("quick", "ablation", "long", "full")]
    else:
        sections = [(suite, out)]
    if args.report_only:
        return report_only(sections, suite, out, report_dir)
    data_root = Path(args.data_root).expanduser() if args.data_root else None
    device = args.device or ("cpu" if args.suite == "quick" else "auto")
    workers = []
    if args.jobs > 1:
        argv = ["--suite", args.suite, "--out", str(out.resolve()), *(["--seeds", *map(str, seeds)] if seeds else []),
                "--device", device, "--threads", str(threads)]
        argv += (["--only", args.only] if args.only else []) + (["--tiny"] if args.tiny else [])
        argv += ["--data-root", str(data_root.resolve())] if data_root else []
        workers = start_workers(argv, out, args.jobs)
        print(f"{args.jobs} processes, {threads} torch thread{'s' if threads > 1 else ''} each; the others log to "
              + ", ".join(str(worker_log(out, i)) for i in range(2, args.jobs + 1)), flush=True)
    return execute(suite, out, only=args.only, device=device, data_root=data_root, report_dir=report_dir,
                   report_sections=sections, report=not args.worker, workers=workers)


if __name__ == "__main__":
    sys.exit(main())
