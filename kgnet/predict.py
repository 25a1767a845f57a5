"""`python -m kgnet.predict`: classify image files with a released model, and name its concepts.

Loads only `model.safetensors` + `model.json` from a run folder (no pickle, no training state),
rebuilds the model from the saved config and graph, and prints the top-k classes with their
probabilities and, for knowledge variants, the concepts the image attended to most.

    python -m kgnet.predict --run runs/20261125-fashion_mnist shoe.png shirt.jpg
    python -m kgnet.predict --run runs/exp1 --variant baseline --top-k 3 *.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from kgnet.cli import setup_logging, user_errors_exit_2
from kgnet.errors import KgnetError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kgnet.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="run folder written by python -m kgnet.train")
    parser.add_argument("--variant", default="kgnet", help="which trained variant (default kgnet)")
    parser.add_argument("--top-k", type=int, default=5, help="classes (and concepts) to list")
    parser.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...)")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def load_released_model(folder: str | Path):
    """The model of one variant folder (model.safetensors + model.json), in eval mode, and its meta."""
    from kgnet.config import config_from_dict
    from kgnet.engine.checkpoint import load_release
    from kgnet.kg.graph import KnowledgeGraph
    from kgnet.models import create_model

    folder = Path(folder)
    if not (folder / "model.safetensors").is_file() or not (folder / "model.json").is_file():
        raise KgnetError(f"{folder}: no model.safetensors + model.json; is it a variant folder of a kgnet run?")
    tensors, meta = load_release(folder)
    config = config_from_dict(meta["config"], source=str(folder / "model.json"))
    graph = text_features = None
    if meta.get("graph"):
        graph = KnowledgeGraph.from_dict(
            {**meta["graph"], **{k.removeprefix("graph."): v for k, v in tensors.items() if k.startswith("graph.")}}
        )
        text_features = tensors["text_features"]
    model = create_model(config, graph, text_features, num_classes=len(meta["class_names"]),
                         in_chans=meta["in_chans"], image_size=meta["image_size"])
    model.load_state_dict({k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")})
    return model.eval(), meta


def load_image(path: str | Path, meta: dict[str, Any]):
    """An image file as the normalised [C, H, W] tensor the model was trained on."""
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("L" if meta["in_chans"] == 1 else "RGB")
            image = image.resize((meta["image_size"], meta["image_size"]), Image.BILINEAR)
            array = np.asarray(image, dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise KgnetError(f"{path}: no such image file") from None
    except (UnidentifiedImageError, OSError) as err:
        raise KgnetError(f"{path}: not a readable image ({err})") from None
    tensor = torch.from_numpy(array).reshape(array.shape[0], array.shape[1], -1).permute(2, 0, 1)
    mean = torch.tensor(meta["pixel_stats"]["mean"]).view(-1, 1, 1)
    std = torch.tensor(meta["pixel_stats"]["std"]).view(-1, 1, 1)
    return (tensor - mean) / std


@user_errors_exit_2
def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.verbose)
    import torch

    model, meta = load_released_model(Path(args.run) / args.variant)
    batch = torch.stack([load_image(path, meta) for path in args.images])
    with torch.no_grad():
        out = model(batch)
    probabilities = out.logits.softmax(dim=1)
    k = min(args.top_k, probabilities.shape[1])
    for i, path in enumerate(args.images):
        print(f"{path}:")
        values, indices = probabilities[i].topk(k)
        for p, c in zip(values.tolist(), indices.tolist()):
            print(f"  {meta['class_names'][c]:<24} {100 * p:6.2f}%")
        if out.attention is not None:
            weights = out.attention[i].mean(dim=(0, 1))  # over heads and visual tokens
            top = weights.topk(min(k, len(weights)))
            concepts = ", ".join(f"{model.token_labels[j]} ({w:.2f})" for w, j in zip(top.values.tolist(), top.indices.tolist()))
            print(f"  concepts: {concepts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
