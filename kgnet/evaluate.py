"""`python -m kgnet.evaluate`: score every trained variant of a run folder and draw its figures.

For each variant folder (model.safetensors + model.json) it loads the release, rebuilds the
run's data from its config.yaml (same seed, same split, the release's preprocessing), predicts
the split once and merges into the run's metrics.json: top-1, top-5, per-class accuracy, the
confusion matrix, the expected calibration error, the hierarchy-aware mistakes, zero-shot/GZSL
numbers when classes were held out, and the hidden-layer analysis (class and superclass
silhouette of the image embeddings). With held-out classes, the choice among all classes
(per-class accuracy, confusion, `gzsl_calibrated_*`) subtracts the release's GZSL calibration
constant from the seen classes' logits; `gzsl_*` is the uncalibrated choice, `gzsl_ausuc` the
area under the seen-unseen accuracy curve. Figures: confusion_<variant>.png and
embedding_projection.png in the run folder. Training computes the same numbers and figures
for the test split itself, from the models it holds; this command is for another split, or
for a run copied without them.

    python -m kgnet.evaluate --run runs/20261125-fashion_mnist
    python -m kgnet.evaluate --run runs/exp1 --split val --variants baseline kgnet
    python -m kgnet.evaluate --run runs/exp1 --projection pca --device cuda
    python -m kgnet.evaluate --run runs/exp1 --ontology kg/edited.ttl

With `--ontology`, each trained variant takes the edited ontology without training: the classes it
declares (`kgnet:className`) that the run did not have are added (the data set must have them) and
scored among all classes, with the GZSL constant chosen on the validation split; the numbers go to
RUN/extended/<ontology name>/metrics.json, not into the run's own.

The test split's numbers sit at the top level of each variant's entry in metrics.json;
another split's go under its name (metrics["kgnet"]["val"]) and its figures carry the
split's name (confusion_kgnet_val.png).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from kgnet.cli import libraries_loading, path_argument, setup_logging, user_errors_exit_2
from kgnet.engine.tables import evaluation_table

SPLITS = ("test", "val")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kgnet.evaluate", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("--run", required=True, metavar="DIR", type=path_argument,
                        help="run folder written by python -m kgnet.train")
    parser.add_argument("--split", choices=SPLITS, default="test", help="which split to score (default test)")
    parser.add_argument("--variants", nargs="+", metavar="NAME", help="only these variants (default: every one trained)")
    parser.add_argument("--projection", choices=("tsne", "pca"), default="tsne",
                        help="2-D projection of a stratified sample of 1,000 embeddings per variant (default tsne)")
    parser.add_argument("--device", help="cpu, cuda, cuda:N (default: the run's train.device)")
    parser.add_argument("--ontology", metavar="FILE", type=path_argument,
                        help="an edited ontology: score its new classes without training (see below)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


@user_errors_exit_2
def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.verbose)
    with libraries_loading():
        # deferred: --help and bad arguments are answered before torch and the models load
        from kgnet.engine.evaluation import evaluate_run
        from kgnet.engine.extend import evaluate_extended

    if args.ontology is not None:
        results = evaluate_extended(args.run, args.ontology, args.split, args.variants, device=args.device)
        out = Path(args.run) / "extended" / Path(args.ontology).stem
        print(f"\n{evaluation_table(results)}\n\nwritten to {out}: metrics.json, confusion figures")
        return 0
    results = evaluate_run(args.run, args.split, args.variants, device=args.device, projection=args.projection)
    suffix = "" if args.split == "test" else f"_{args.split}"
    figures = [f"confusion_{name}{suffix}.png" for name in results] + [f"embedding_projection{suffix}.png"]
    print(f"\n{evaluation_table(results)}\n\nwritten to {args.run}: metrics.json, {', '.join(figures)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
