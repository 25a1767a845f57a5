"""`python -m kgnet.explain`: why the baseline and the knowledge variant of a run decided as they did.

Per image, one figure: the input, the baseline's Grad-CAM and the knowledge variant's map side by
side (a concept head's exact class map: each concept's contribution on the region that found it,
adding up to the score; else Grad-CAM), the knowledge variant's top concepts and where in the
image each was found. With a concept head (the default kgnet) the bars are the concepts that add
to the predicted class and the runner-up's own strongest ones, each its exact contribution
(logit points: removing it moves the score by exactly that), with the ontology path linking it
to the class; with the prototype design, its attention weight. Plus faithfulness numbers over
test images (deletion/insertion AUC and pytorch-grad-cam's ROAD of each map, none from a map
that is zero everywhere; the share of each map's energy on the object; the fall of the
predicted class's probability when the top vs a random concept is removed; for a concept head
the concept deletion AUC and concept precision) and an index.html gallery of it all.

    python -m kgnet.explain --run runs/exp1 --samples 12
    python -m kgnet.explain --run runs/exp1 --images shoe.png shirt.jpg --faithfulness 200
    python -m kgnet.explain --run runs/exp1 --samples 4 --faithfulness 500 --fill blur --out /tmp/x
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from kgnet.cli import libraries_loading, path_argument, setup_logging, user_errors_exit_2
from kgnet.explain import FILLS, STEPS


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kgnet.explain", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("--run", required=True, metavar="DIR", type=path_argument,
                        help="run folder written by python -m kgnet.train")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--images", nargs="+", metavar="PATH", help="image files to explain")
    which.add_argument("--samples", type=int, metavar="N", help="explain N images of the run's test split")
    parser.add_argument("--out", metavar="DIR", type=path_argument,
                        help="output folder: new, empty, or written by an earlier explain (default: DIR/explain)")
    parser.add_argument("--variant", default="kgnet", help="the knowledge variant (default kgnet)")
    parser.add_argument("--baseline", default="baseline", help="the variant to compare with (default baseline)")
    parser.add_argument("--faithfulness", type=int, metavar="N",
                        help="test images for the faithfulness numbers (default 100 with --samples, 0 with --images)")
    parser.add_argument("--steps", type=int, default=STEPS, help=f"steps of the deletion/insertion curves "
                        f"(default {STEPS})")
    parser.add_argument("--fill", choices=FILLS, default="mean",
                        help="what a deleted pixel becomes: the normalised zero (mean, default) or a blur")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


@user_errors_exit_2
def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.verbose)
    with libraries_loading():
        # deferred: --help and bad arguments are answered before the models and matplotlib load (~1 s)
        from kgnet.explain.pipeline import explain_run

    result = explain_run(args.run, images=args.images or (), samples=args.samples, out=args.out,
                         variant=args.variant, baseline=args.baseline, faithfulness=args.faithfulness,
                         steps=args.steps, fill=args.fill, device=args.device)
    if result.faithfulness:
        f = result.faithfulness
        for what, by_variant in (("Grad-CAM", f["gradcam"]), ("class map", f.get("class_map", {}))):
            for name, scores in by_variant.items():
                if scores["deletion"] is None:
                    print(f"{name:<12} {what}: no deletion/insertion AUC or ROAD: {scores['not_available']}")
                    continue
                left_out = (f" ({100 * scores['zero_maps']:.0f}% zero maps left out)" if scores["zero_maps"] else "")
                print(f"{name:<12} {what} deletion AUC {scores['deletion']['mean']:.3f} +- "
                      f"{scores['deletion']['std']:.3f}   insertion AUC {scores['insertion']['mean']:.3f} +- "
                      f"{scores['insertion']['std']:.3f}   ROAD {scores['road']['mean']:+.3f} +- "
                      f"{scores['road']['std']:.3f}{left_out}")
        diff = f.get("energy_on_object_difference")
        if diff and diff["mean"] is not None:
            interval = (f" [{100 * diff['ci_low']:+.1f}, {100 * diff['ci_high']:+.1f}]" if diff["ci_low"] is not None
                        else "")
            print(f"energy on the object, {diff['of']}: {100 * diff['mean']:+.1f} points{interval} over "
                  f"{diff['images']} images")
        for line in result.explanation.summary_lines(f["concepts"]):
            print(line)
    print(f"{len(result.figures)} figures, gallery: {result.out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
