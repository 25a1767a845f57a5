"""`python -m kgnet.train`: train the baseline and knowledge-injected variants and compare them.

With no arguments: Fashion-MNIST (offline, from the Debian package), 5 training images per
class, its shipped garments ontology (kg/fashion_mnist_garments.ttl), variants `baseline` and
`kgnet` (the concept head), on the CPU, printing a comparison table (a few minutes on 2 CPU cores:
docs/quickstart.md gives the measured times). All 54,000 training images: --set
data.samples_per_class=null --set train.batch_size=128 --set train.lr=2e-3.

Launch recipes:

    python -m kgnet.train                                    # the embedded default, CPU
    python -m kgnet.train --config my.yaml --set train.epochs=10 --out runs/exp1
    python -m kgnet.train --set data.name=cifar10 --set data.root=/data/cifar --set train.device=cuda
    python -m kgnet.train --resume runs/exp1                 # continue a killed run
    torchrun --nproc_per_node=2 -m kgnet.train --set train.device=cpu   # DDP, gloo on CPU
    torchrun --nproc_per_node=8 -m kgnet.train --set train.device=cuda  # DDP, nccl on GPUs

Every run writes a folder: config.yaml, metrics.json, comparison.txt, curves.png, the
evaluation figures (confusion_<variant>.png, embedding_projection.png), and per variant
last.pt (resumable state), model.safetensors + model.json (the release) and log.csv. Each
variant's test split is predicted once, by the model in memory, for every number and figure.

From Python, `kgnet.train.run(config, folder)` does the same and returns the metrics (it is
`kgnet.engine.runner.run`; this module only parses the command line).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Sequence

from typing import Any

from kgnet.checks import output_folder, run_folder
from kgnet.cli import libraries_loading, path_argument, setup_logging, user_errors_exit_2
from kgnet.config import add_config_arguments, config_from_args, load_config
from kgnet.engine.tables import comparison_table, evaluation_table
from kgnet.errors import ConfigError

__all__ = ["CALIBRATION", "main", "run"]


def __getattr__(name: str) -> Any:
    """`run` and `CALIBRATION` are `kgnet.engine.runner`'s, loaded when first asked for."""
    if name in ("run", "CALIBRATION"):
        # deferred: the runner loads torch and timm (~8 s); the command line is checked before
        from kgnet.engine import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'kgnet.train' has no attribute {name!r}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kgnet.train", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    add_config_arguments(parser)
    parser.add_argument("--out", metavar="DIR", type=path_argument, help="run folder (default: <out>/<time>-<dataset>)")
    parser.add_argument("--resume", metavar="DIR", type=path_argument,
                        help="continue the run in DIR with its saved config")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


@user_errors_exit_2
def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.verbose)
    if args.resume:
        folder = Path(args.resume)
        if args.config or args.overrides:
            raise ConfigError("--resume takes the run's saved config; drop --config/--set")
        if args.out and Path(args.out).expanduser().resolve() != folder.expanduser().resolve():
            raise ConfigError(f"--resume {folder} continues that run in its own folder; drop --out {args.out} "
                              "(to train its settings into a new folder: --config "
                              f"{folder / 'config.yaml'} --out {args.out})")
        config = load_config(run_folder(folder, "--resume") / "config.yaml")
    else:
        config = config_from_args(args)
        folder = Path(args.out) if args.out else Path(config.out) / f"{time.strftime('%Y%m%d-%H%M%S')}-{config.data.name}"
        output_folder(folder, "--out", must_be_empty=False)  # emptiness: the run claims it (engine/run_claim.py)
    with libraries_loading():
        # deferred: torch and timm load (~8 s) once the command line and the config are checked
        from kgnet.engine.runner import run

    metrics = run(config, folder, resume=bool(args.resume))
    if metrics:
        print(f"\n{comparison_table(metrics)}\n\n{evaluation_table(metrics)}\n\nrun folder: {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
