"""Research harness for issues 11 and 12: knowledge-anchored heads, chosen on validation.

One *cell* = one design, one variant, one seed, one regime (k training images per class, or
held-out classes). A cell trains resnet10t (28 px, grayscale, from scratch) with its own small
loop, scores a fixed validation set drawn from the official TRAINING split (200 images per class,
disjoint from every training image; the official test split is never read), and appends one
JSON line to the output file. Cells already in the file are skipped, so a killed sweep resumes.

    python -m benchmarks.design_sweep --design concept --variants baseline kgnet kgnet-permuted \
        --shots 1 5 --seeds 0 1 2 --out benchmarks/results/design/cells.jsonl

Pairing: with one seed every variant sees the same training images, in the same order, with
the same augmentation, and starts from the same backbone weights.

Variants (all through the same code; only the class-concept matrix A differs):
  baseline            backbone, mean pool, MLP head (kgnet's baseline), cross-entropy
  kgnet               the design's head with A from the ontology
  kgnet-permuted      A's rows deranged among classes: same geometry, wrong meaning
  kgnet-shuffled      A from the graph with edges rewired (degrees per relation kept)
  kgnet-noknowledge   A = identity (one concept per class): the machinery alone
  kgnet-randomtext    concept vectors initialised from random instead of real node text
                      (only differs from kgnet when the design reads text)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

torch.set_num_threads(int(os.environ.get("DESIGN_THREADS", "1")))

from kgnet.data.builder import read_arrays  # noqa: E402
from kgnet.data.splits import stratified_split, subsample_per_class  # noqa: E402
from kgnet.data.stats import PIXEL_STATS  # noqa: E402
from kgnet.kg.build import build_class_graph  # noqa: E402
from kgnet.models.backbone import Backbone  # noqa: E402
from kgnet.models.class_concepts import (class_concept_matrix, derange_rows,  # noqa: E402
                                         identity_concepts)
from kgnet.models.concept_head import ConceptHead  # noqa: E402
from kgnet.models.controls import random_text_features, shuffle_edges  # noqa: E402
from kgnet.models.heads import MLPHead  # noqa: E402

VAL_SEED = 20261125  # fixes the validation images once, for every cell
VAL_PER_CLASS = 200
ONTOLOGIES = {"wordnet": "kg/fashion_mnist.ttl", "garments": "kg/fashion_mnist_garments.ttl"}

#: Settings every design starts from; a design overrides some of them.
DEFAULTS: dict = {
    "backbone": "resnet10t",
    "embed_dim": 256,           # MLP head width (the baseline's)
    "concept_dim": 256,         # concept space width of the concept head
    "head": "concept",          # concept | mlp | cos (kgnet variants); baseline is always mlp
    "ontology": "garments",
    "hops": 3,
    "decay": 0.7,
    "self_weight": 0.5,
    "pool": "max",
    "learn_weights": False,
    "init_scale": 10.0,
    "fixed_concepts": False,    # concept vectors fixed orthonormal: class geometry from A alone
    "concept_text": False,      # initialise concept vectors from projected node text
    "concept_bce": 0.0,         # weight of a per-concept BCE with targets from A's support
    "bce_scale": 10.0,
    "soft_eps": 0.0,            # mass of hierarchy soft targets (A-row similarity)
    "soft_temp": 0.1,
    "lr": 2e-3,
    "wd": 0.05,
    "pad": 0,
    "flip": False,
    "steps": {"1": 200, "2": 200, "5": 250, "10": 300, "100": 1500},
    "batch": {"1": 10, "2": 20, "5": 25, "10": 32, "100": 64},
    "dropout": 0.1,
}

DESIGNS: dict[str, dict] = {
    "base": {},
    # the baseline recipe chosen on validation at 1 image per class (recipe.jsonl)
    "r1": {"pad": 2, "flip": True, "lr": 5e-4},
    # the per-regime recipe: lr chosen per regime on the baseline's validation accuracy
    "r2": {"pad": 2, "flip": True, "lr": {"1": 5e-4, "2": 5e-4, "5": 1e-3, "10": 2e-3, "100": 2e-3},
           "steps": {"1": 200, "2": 200, "5": 250, "10": 300, "100": 600}},
}


# ---------------------------------------------------------------------------------------- data
@dataclass
class Data:
    images: Tensor        # uint8 [N, 1, 28, 28], the official training split
    labels: Tensor        # int64 [N]
    val_idx: np.ndarray   # fixed validation images (200 per class)
    pool_idx: np.ndarray  # everything else: training images are drawn from here
    class_names: list[str]
    wnids: list[str]


_DATA: Data | None = None


def load_data() -> Data:
    global _DATA
    if _DATA is None:
        arrays, card = read_arrays("fashion_mnist")
        labels = np.asarray(arrays.train.labels, dtype=np.int64)
        frac = VAL_PER_CLASS / np.bincount(labels).min()
        pool, val = stratified_split(labels, frac, VAL_SEED)
        val = np.concatenate([val[labels[val] == c][:VAL_PER_CLASS] for c in range(len(card.classes))])
        images = torch.as_tensor(np.asarray(arrays.train.images))
        if images.ndim == 3:
            images = images[:, None]
        _DATA = Data(images, torch.as_tensor(labels), np.sort(val), pool, list(card.classes), list(card.wnids))
    return _DATA


def normalise(images: Tensor) -> Tensor:
    s = PIXEL_STATS["fashion_mnist"]
    return (images.float() / 255.0 - s.mean[0]) / s.std[0]


def augment(images: Tensor, pad: int, flip: bool, gen: torch.Generator) -> Tensor:
    """Random shifts (zero padding, crop back) and left-right flips of a uint8 batch."""
    if pad:
        b, _, h, w = images.shape
        padded = F.pad(images, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
        dx = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
        images = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(b)])
    if flip:
        mask = torch.rand(images.shape[0], generator=gen) < 0.5
        images = torch.where(mask[:, None, None, None], images.flip(-1), images)
    return images


# --------------------------------------------------------------------------------------- model
_GRAPHS: dict = {}


def graph_for(ontology: str):
    if ontology not in _GRAPHS:
        d = load_data()
        _GRAPHS[ontology] = build_class_graph(ONTOLOGIES[ontology], d.class_names, hops=4, wnids=d.wnids)
    return _GRAPHS[ontology]


def concepts_for(cfg: dict, variant: str, seed: int, seen: list[int]):
    graph = graph_for(cfg["ontology"])
    if variant == "kgnet-noknowledge":
        return identity_concepts(graph), graph
    if variant == "kgnet-shuffled":
        graph = shuffle_edges(graph, seed=seed)
    cc = class_concept_matrix(graph, hops=cfg["hops"], decay=cfg["decay"], self_weight=cfg["self_weight"],
                              classes=seen)
    if variant == "kgnet-permuted":
        cc = derange_rows(cc, seed)
    return cc, graph


class Net(nn.Module):
    """Backbone + one head; returns logits [B, K] and concept activations (or None)."""

    def __init__(self, cfg: dict, variant: str, seed: int, num_classes: int, seen: list[int]) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.backbone = Backbone(name=cfg["backbone"], in_chans=1, img_size=28, small_input=True)
            torch.manual_seed(seed + 7919)
            c = self.backbone.num_features
            self.kind = "mlp" if variant == "baseline" else cfg["head"]
            self.concepts = None
            if variant != "baseline":  # A also drives the soft targets of an MLP-head design
                cc, graph = concepts_for(cfg, variant, seed, seen)
                self.concepts = cc
            if self.kind == "mlp":
                self.head = MLPHead(in_dim=c, embed_dim=cfg["embed_dim"], num_classes=num_classes,
                                    dropout=cfg["dropout"])
            else:
                init = None
                if cfg["concept_text"]:
                    from kgnet.kg.text_features import encode_texts
                    text = encode_texts([graph.node_texts[n] for n in cc.node_ids], progress=False)
                    if variant == "kgnet-randomtext":
                        text = random_text_features(text, seed=seed)
                    proj = torch.randn(text.shape[1], cfg["concept_dim"]) / math.sqrt(text.shape[1])
                    init = text @ proj
                weights = cc.weights
                if self.kind == "cos":  # cosine prototypes = A with identity, kept for clarity
                    weights = torch.eye(num_classes)
                self.head = ConceptHead(in_dim=c, embed_dim=cfg["concept_dim"], weights=weights, pool=cfg["pool"],
                                        learn_weights=cfg["learn_weights"], init_scale=cfg["init_scale"],
                                        concept_init=init, fixed_concepts=cfg["fixed_concepts"])

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        tokens, _ = self.backbone.split_tokens(self.backbone(x))
        if self.kind == "mlp":
            _, logits = self.head(tokens.mean(1))
            return logits, None
        return self.head(tokens)


# ------------------------------------------------------------------------------------ training
def soft_targets(weights: Tensor, temp: float) -> Tensor:
    """[K, K] target distributions from the similarity of A's rows (self part excluded)."""
    k = weights.shape[0]
    w = weights.clone()
    w[torch.arange(k), torch.arange(k)] = 0
    wn = F.normalize(w, dim=1)
    logits = (wn @ wn.T) / temp
    logits.fill_diagonal_(float("-inf"))
    return torch.softmax(logits, dim=1)


def train_cell(cfg: dict, variant: str, seed: int, shots: int, held_out: list[int],
               extra_held_out: list[int] = ()) -> tuple[Net, dict]:
    d = load_data()
    k = len(d.class_names)
    unseen = sorted(set(held_out) | set(extra_held_out))
    seen = [c for c in range(k) if c not in unseen]
    pool = d.pool_idx[~np.isin(d.labels.numpy()[d.pool_idx], unseen)]
    train_idx = subsample_per_class(d.labels.numpy(), pool, shots, seed)
    net = Net(cfg, variant, seed, k, seen)
    steps = cfg["steps"][str(shots)]
    batch = min(cfg["batch"][str(shots)], len(train_idx))
    params = list(net.parameters())
    lr = cfg["lr"][str(shots)] if isinstance(cfg["lr"], dict) else cfg["lr"]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=cfg["wd"])
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, steps - warm))))
    gen = torch.Generator().manual_seed(seed * 1000 + 17)
    allowed = torch.zeros(k, dtype=torch.bool)
    allowed[seen] = True
    soft = None
    if cfg["soft_eps"] > 0 and net.concepts is not None:  # the baseline stays plain cross-entropy
        soft = soft_targets(net.concepts.weights, cfg["soft_temp"])  # identity A: uniform smoothing
    bce_targets = None
    if cfg["concept_bce"] > 0 and net.kind == "concept":
        bce_targets = (net.head.base_weights > 0).float()
    images, labels = d.images[train_idx], d.labels[train_idx]
    order = torch.empty(0, dtype=torch.long)
    net.train()
    started = time.perf_counter()
    for step in range(steps):
        if len(order) < batch:
            order = torch.cat([order, torch.randperm(len(train_idx), generator=gen)])
        idx, order = order[:batch], order[batch:]
        x = normalise(augment(images[idx], cfg["pad"], cfg["flip"], gen))
        y = labels[idx]
        logits, c = net(x)
        logits = logits.masked_fill(~allowed, -1e4)
        loss = F.cross_entropy(logits, y)
        if soft is not None:
            target = (1 - cfg["soft_eps"]) * F.one_hot(y, k).float() + cfg["soft_eps"] * soft[y]
            target = target * allowed
            target = target / target.sum(1, keepdim=True)
            loss = -(target * F.log_softmax(logits, 1)).sum(1).mean()
        if bce_targets is not None and c is not None:
            cols = bce_targets[seen].sum(0) > 0  # only concepts some seen class has
            q = cfg["bce_scale"] * (c[:, cols] - 0.5)
            loss = loss + cfg["concept_bce"] * F.binary_cross_entropy_with_logits(q, bce_targets[y][:, cols])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    train_s = time.perf_counter() - started
    return net, {"steps": steps, "batch": batch, "train_images": int(len(train_idx)), "train_s": train_s,
                 "final_loss": float(loss.detach()), "seen": seen, "unseen": unseen}


@torch.no_grad()
def val_outputs(net: Net) -> tuple[Tensor, Tensor | None, Tensor]:
    d = load_data()
    net.eval()
    logits, concepts = [], []
    for i in range(0, len(d.val_idx), 500):
        idx = d.val_idx[i:i + 500]
        lo, c = net(normalise(d.images[idx]))
        logits.append(lo)
        if c is not None:
            concepts.append(c)
    return torch.cat(logits), (torch.cat(concepts) if concepts else None), d.labels[d.val_idx]


# ---------------------------------------------------------------------------------- evaluation
def gzsl_curve(logits: Tensor, labels: Tensor, seen: list[int], unseen: list[int]) -> dict:
    """Seen/unseen accuracy as the constant subtracted from seen logits sweeps; AUSUC; best H."""
    s_mask = torch.zeros(logits.shape[1], dtype=torch.bool)
    s_mask[seen] = True
    u_mask = torch.zeros_like(s_mask)
    u_mask[unseen] = True
    max_s = logits.masked_fill(~s_mask, -1e9).max(1)
    max_u = logits.masked_fill(~u_mask, -1e9).max(1)
    gap = max_s.values - max_u.values            # seen wins iff gap > gamma
    is_seen = s_mask[labels]
    is_unseen = u_mask[labels]
    ok_seen = is_seen & (max_s.indices == labels)     # correct for gamma < gap
    ok_unseen = is_unseen & (max_u.indices == labels)  # correct for gamma > gap (ties ignored)
    n_s, n_u = int(is_seen.sum()), int(is_unseen.sum())
    gammas = torch.sort(gap).values
    grid = torch.cat([gammas.min()[None] - 1, (gammas[1:] + gammas[:-1]) / 2, gammas.max()[None] + 1])
    acc_s = ((gap[None, :] > grid[:, None]) & ok_seen[None]).sum(1).float() / max(n_s, 1)
    acc_u = ((gap[None, :] < grid[:, None]) & ok_unseen[None]).sum(1).float() / max(n_u, 1)
    order = torch.argsort(acc_u)
    au, as_ = acc_u[order], acc_s[order]
    ausuc = float(torch.trapezoid(as_, au))
    h = 2 * acc_s * acc_u / (acc_s + acc_u).clamp_min(1e-12)
    best = int(h.argmax())
    return {"ausuc": ausuc, "best_h": float(h[best]), "best_gamma": float(grid[best]),
            "grid": grid, "acc_s": acc_s, "acc_u": acc_u}


def at_gamma(logits: Tensor, labels: Tensor, seen: list[int], unseen: list[int], gamma: float) -> dict:
    adj = logits.clone()
    adj[:, seen] -= gamma
    pred = adj.argmax(1)
    s = torch.isin(labels, torch.tensor(seen))
    u = torch.isin(labels, torch.tensor(unseen))
    acc_s = float((pred[s] == labels[s]).float().mean())
    acc_u = float((pred[u] == labels[u]).float().mean())
    h = 2 * acc_s * acc_u / (acc_s + acc_u) if acc_s + acc_u > 0 else 0.0
    return {"seen": acc_s, "unseen": acc_u, "h": h}


@torch.no_grad()
def faithfulness(net: Net, logits: Tensor, concepts: Tensor, seed: int) -> dict:
    """Exact removal of concepts from the concept head (c_j := 0) on the validation images."""
    head: ConceptHead = net.head
    w = head.weights
    scale = float(head.scale)
    prob = logits.softmax(1)
    pred = prob.argmax(1)
    contrib = scale * concepts * w[pred]                      # [N, M] shares of the predicted logit
    gen = torch.Generator().manual_seed(seed)
    out = {}
    k = w.shape[0]
    for name, allowed in (("all", torch.ones(w.shape[1], dtype=torch.bool)),
                          ("ontology", torch.arange(w.shape[1]) >= k)):
        support = (w[pred] > 0) & allowed[None]
        if not bool(support.any(1).all()):
            continue
        masked = contrib.masked_fill(~support, -1e9)
        top = masked.argmax(1)
        rnd = torch.stack([row.nonzero().flatten()[torch.randint(int(row.sum()), (1,), generator=gen)][0]
                           for row in support])

        def drop(j: Tensor) -> Tensor:
            cj = concepts.gather(1, j[:, None])                # [N, 1]
            new = logits - scale * cj * w[:, j].T              # every class loses j's share
            return prob.gather(1, pred[:, None])[:, 0] - new.softmax(1).gather(1, pred[:, None])[:, 0]

        td, rd = drop(top), drop(rnd)
        out[name] = {"top_drop_mean": float(td.mean()), "random_drop_mean": float(rd.mean()),
                     "fraction_top_greater": float((td > rd).float().mean()),
                     "top_is_self": float((top < k).float().mean())}
    return out


def run_cell(design: str, cfg: dict, variant: str, seed: int, shots: int, held_out: list[int],
             calib: list[list[int]] | None) -> dict:
    started = time.perf_counter()
    net, info = train_cell(cfg, variant, seed, shots, held_out)
    logits, concepts, labels = val_outputs(net)
    d = load_data()
    seen, unseen = info["seen"], info["unseen"]
    row = {"design": design, "variant": variant, "seed": seed, "shots": shots, "held_out": held_out,
           **{k: v for k, v in info.items() if k not in ("seen", "unseen")}}
    s_mask = torch.isin(labels, torch.tensor(seen))
    seen_logits = logits[:, seen]
    pred_seen = torch.tensor(seen)[seen_logits.argmax(1)]
    row["val_top1"] = float((pred_seen[s_mask] == labels[s_mask]).float().mean())
    row["per_class"] = [float((pred_seen[labels == c] == c).float().mean()) if c in seen else None
                        for c in range(len(d.class_names))]
    conf = torch.zeros(len(d.class_names), len(d.class_names), dtype=torch.long)
    conf.index_put_((labels[s_mask], pred_seen[s_mask]), torch.ones(int(s_mask.sum()), dtype=torch.long),
                    accumulate=True)
    row["confusion"] = conf.tolist()
    if net.kind != "mlp":
        row["scale"] = float(net.head.scale.detach())
    if unseen:
        u_mask = torch.isin(labels, torch.tensor(unseen))
        pred_u = torch.tensor(unseen)[logits[:, unseen].argmax(1)]
        row["zsl_top1"] = float((pred_u[u_mask] == labels[u_mask]).float().mean())
        curve = gzsl_curve(logits, labels, seen, unseen)
        row["ausuc"], row["oracle_h"], row["oracle_gamma"] = curve["ausuc"], curve["best_h"], curve["best_gamma"]
        row["h_at_0"] = at_gamma(logits, labels, seen, unseen, 0.0)
        if net.kind == "concept":
            head: ConceptHead = net.head
            w = head.weights.detach()
            k = w.shape[0]
            scale = float(head.scale.detach())
            struct = w.clone()
            struct[torch.arange(k), torch.arange(k)] = 0
            sl = scale * concepts @ struct.T  # structure-only scores: no class's own concept
            row["struct_top1_seen"] = float((torch.tensor(seen)[sl[:, seen].argmax(1)][s_mask]
                                             == labels[s_mask]).float().mean())
            row["struct_h_at_0"] = at_gamma(sl, labels, seen, unseen, 0.0)
            row["struct_ausuc"] = gzsl_curve(sl, labels, seen, unseen)["ausuc"]
            # the seen classes' advantage is their own trained concept: estimate it on seen images only
            own = concepts[s_mask].gather(1, labels[s_mask][:, None])[:, 0]
            gamma_self = float((scale * torch.diagonal(w)[labels[s_mask]] * own).mean())
            row["gamma_self"] = gamma_self
            row["calibrated_selfbias"] = at_gamma(logits, labels, seen, unseen, gamma_self)
        if calib:  # extra runs with some seen classes playing unseen choose the constant
            gammas, scaled = [], []
            if calib == "auto":  # seeded choice of seen classes to play unseen, as many as are held out
                rng = np.random.default_rng([seed, 4242])
                calib = [sorted(rng.choice(seen, size=len(unseen), replace=False).tolist())]
            row["calib_classes"] = calib
            for pseudo in calib:
                cnet, cinfo = train_cell(cfg, variant, seed, shots, held_out, extra_held_out=pseudo)
                cl, _, _ = val_outputs(cnet)
                keep = ~torch.isin(labels, torch.tensor(held_out))  # real unseen images never read
                cs = [c for c in cinfo["seen"]]
                cc = gzsl_curve(cl[keep], labels[keep], cs, pseudo)
                gammas.append(cc["best_gamma"])
                if cnet.kind != "mlp":
                    scaled.append(cc["best_gamma"] / float(cnet.head.scale.detach()))
            gamma = float(np.mean(gammas))
            row["calib_gammas"] = gammas
            row["calibrated"] = at_gamma(logits, labels, seen, unseen, gamma)
            if scaled and net.kind != "mlp":
                g2 = float(np.mean(scaled)) * float(net.head.scale)
                row["calibrated_scaled"] = at_gamma(logits, labels, seen, unseen, g2)
    if concepts is not None and net.kind == "concept":
        keep = s_mask
        row["faithfulness"] = faithfulness(net, logits[keep][:, :], concepts[keep], seed)
    row["cell_s"] = time.perf_counter() - started
    return row


def cell_key(row: dict) -> tuple:
    return (row["design"], row["variant"], row["seed"], row["shots"], tuple(row["held_out"]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--design", required=True)
    parser.add_argument("--name", help="name recorded for the design (default: --design)")
    parser.add_argument("--variants", nargs="+", default=["baseline", "kgnet"])
    parser.add_argument("--shots", nargs="+", type=int, default=[1])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--held-out", nargs="*", default=[], help="class names held out (zero-shot)")
    parser.add_argument("--calib", nargs="*", default=[], help="pseudo-unseen groups, e.g. Coat,Sneaker")
    parser.add_argument("--set", nargs="*", default=[], help="key=value (JSON value) overrides")
    parser.add_argument("--out", default="benchmarks/results/design/cells.jsonl")
    args = parser.parse_args()

    cfg = json.loads(json.dumps(DEFAULTS))
    cfg.update(DESIGNS.get(args.design, {}))
    for item in args.set:
        key, value = item.split("=", 1)
        if key not in cfg:
            sys.exit(f"--set: unknown key {key!r}")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        if isinstance(cfg[key], dict) and isinstance(parsed, dict):
            cfg[key] = {**cfg[key], **{str(k): v for k, v in parsed.items()}}
        else:
            cfg[key] = parsed
    name = args.name or args.design
    d = load_data()
    held = [d.class_names.index(c) for c in args.held_out]
    calib = ("auto" if args.calib == ["auto"] else
             [[d.class_names.index(c) for c in g.split(",")] for g in args.calib] or None)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if out.is_file():
        for line in out.read_text().splitlines():
            if line.strip():
                done.add(cell_key(json.loads(line)))
    for shots in args.shots:
        for seed in args.seeds:
            for variant in args.variants:
                key = (name, variant, seed, shots, tuple(held))
                if key in done:
                    continue
                row = run_cell(name, cfg, variant, seed, shots, held, calib)
                row["cfg"] = cfg
                with open(out, "a") as handle:
                    handle.write(json.dumps(row) + "\n")
                extra = ""
                if "zsl_top1" in row:
                    extra = f" zsl {row['zsl_top1']:.3f} ausuc {row['ausuc']:.3f} oracleH {row['oracle_h']:.3f}"
                    if "calibrated" in row:
                        extra += f" calH {row['calibrated']['h']:.3f}"
                print(f"{name} {variant} shots={shots} seed={seed}: val {row['val_top1']:.4f}{extra} "
                      f"({row['cell_s']:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
