"""`python -m kgnet.predict`: classify image files with a released model, and name its concepts.

Loads only `model.safetensors` + `model.json` from a run folder (no pickle, no training state,
no network: the weights are the release's), prepares each image exactly as the model's
training and evaluation did (the preprocessing stored in the release), and prints the top-k
classes with their probabilities and, for knowledge variants, the top concepts: with a concept
head, each one's exact contribution to the top class (logit points), otherwise the concepts the
image attended to most. A run with held-out classes chooses among all classes with its GZSL
calibration constant subtracted from the seen classes' logits (`gzsl_gamma` of the release;
chosen on validation), so an unseen class can be predicted; the probabilities are the softmax
of those calibrated logits.

    python -m kgnet.predict --run runs/20261125-fashion_mnist shoe.png shirt.jpg
    python -m kgnet.predict --run runs/exp1 --variant baseline --top-k 3 *.png

With `--ontology EDITED.ttl` the trained model takes an edited ontology without training: the
classes it declares (nodes with `kgnet:className`) that the run did not have are added to the
outputs and scored from their concepts (`kgnet.engine.extend`); with `kgnet-inductive`, a new
concept node also gets a vector from its text and relations through the trained R-GCN.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from kgnet.checks import input_file
from kgnet.cli import libraries_loading, path_argument, setup_logging, user_errors_exit_2
from kgnet.errors import KgnetError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kgnet.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, type=path_argument, help="run folder written by python -m kgnet.train")
    parser.add_argument("--variant", default="kgnet", help="which trained variant (default kgnet)")
    parser.add_argument("--top-k", type=int, default=5, help="classes (and concepts) to list (default 5)")
    parser.add_argument("--ontology", type=path_argument, metavar="FILE",
                        help="an edited ontology: its new classes (kgnet:className) are added and scored without "
                        "training")
    parser.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def _check_inputs(args: argparse.Namespace) -> Path:
    """Everything this command reads, checked before the model loads; returns the variant folder."""
    with libraries_loading():
        # deferred: bad input is answered before torch and the models load (~4 s)
        from kgnet.release import variant_release

    if args.top_k < 1:
        raise KgnetError(f"--top-k {args.top_k}: give 1 or more")
    for path in args.images:
        input_file(path, "image")
    if args.ontology is not None:
        input_file(args.ontology, "ontology")
    return variant_release(args.run, args.variant)


@user_errors_exit_2
def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.verbose)
    folder = _check_inputs(args)
    with libraries_loading():
        # deferred: bad input is answered before torch, numpy and the models load (~4 s)
        import torch

        from kgnet.data.preprocess import read_image
        from kgnet.engine.extend import extend_release
        from kgnet.explain.explanations import explanation_of
        from kgnet.release import load_release

    release = load_release(folder)
    if args.ontology is not None:
        release = extend_release(release, args.ontology)
    model = release.model
    batch = torch.stack([read_image(path, release.preprocessing) for path in args.images])
    with torch.no_grad():
        out = model(batch)
        probabilities = release.choice_logits(out.logits).softmax(dim=1)
        k = min(args.top_k, probabilities.shape[1])
        what, concepts = explanation_of(model).predict_lines(model, out, probabilities.argmax(dim=1), k)
    for i, path in enumerate(args.images):
        print(f"{path}:")
        values, indices = probabilities[i].topk(k)
        for p, c in zip(values.tolist(), indices.tolist()):
            print(f"  {release.class_names[c]:<24} {100 * p:6.2f}%")
        if concepts[i]:
            print(f"  {what}: {concepts[i]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
