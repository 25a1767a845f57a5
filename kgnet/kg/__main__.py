"""`python -m kgnet.kg`: inspect ontologies, export WordNet subgraphs, check class mappings.

    python -m kgnet.kg list
    python -m kgnet.kg info fashion_mnist_garments [--json]
    python -m kgnet.kg info my_ontology.owl
    python -m kgnet.kg wordnet --dataset cifar10 -o my_cifar10.ttl
    python -m kgnet.kg wordnet --wnids n02084071 n02121808 -o pets.ttl
    python -m kgnet.kg check my_ontology.owl --dataset fashion_mnist [--class-map map.yaml]
    python -m kgnet.kg check my_ontology.owl --dataset fashion_mnist --classes Sneaker Sandal "Ankle boot"
    python -m kgnet.kg without fashion_mnist_garments Sandal Bag -o garments_before.ttl

An ontology is a path, or the name of one kgnet ships (`fashion_mnist`, or `kgnet:fashion_mnist`
explicitly); `list` shows the shipped names.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Sequence

from kgnet.checks import input_file, output_file
from kgnet.cli import libraries_loading, setup_logging, user_errors_exit_2
from kgnet.config import GraphEncoderConfig, integer_range
from kgnet.data.cards import load_card
from kgnet.paths import resolve_ontology, shipped_ontologies


def _hops(text: str) -> int:
    """--hops: a whole number in the range `graph_encoder.hops` takes."""
    low, high = integer_range(next(f for f in dataclasses.fields(GraphEncoderConfig) if f.name == "hops"))
    try:
        hops = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number from {low} to {high}, got {text!r}") from None
    if not low <= hops <= high:
        raise argparse.ArgumentTypeError(f"must be {low} to {high} (0 = the classes and their ancestors only), "
                                         f"got {hops}")
    return hops


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kgnet.kg", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    def ontology_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("path", help="RDF file (Turtle, RDF/XML/.owl, N-Triples, N-Quads, JSON-LD, TriG; .gz ok), "
                       "or the name of a shipped ontology (see `list`), e.g. fashion_mnist")
        p.add_argument("--format", help="rdflib format name when the suffix does not say (turtle, xml, nt, json-ld, ...)")
        p.add_argument("--imports", nargs="+", default=[], metavar="FILE", help="local files standing in for owl:imports")
        p.add_argument("--no-cache", action="store_true", help="compile afresh, ignoring the cache")

    listing = sub.add_parser("list", help="the ontologies kgnet ships, by the name the other commands accept")
    listing.add_argument("--json", action="store_true", help="print one JSON object {name: file}")

    info = sub.add_parser("info", help="counts, relations and warnings of an ontology")
    ontology_args(info)
    info.add_argument("--json", action="store_true", help="print one JSON object")

    check = sub.add_parser("check", help="check that a dataset's classes bind to the ontology")
    ontology_args(check)
    check.add_argument("--dataset", required=True, help="dataset card name (see datasets/), card file, or image "
                       "folder (holding train/<class>/ and val/ or test/)")
    check.add_argument("--class-map", help="mapping file: 'class name: node IRI' per line (YAML/JSON/CSV)")
    check.add_argument("--predicate", help="absolute IRI of a predicate whose literal names each class or gives "
                       "its index, e.g. urn:kgnet:classIndex")
    check.add_argument("--hops", type=_hops, default=2, help="k of the k-hop subgraph to report (default 2)")
    check.add_argument("--classes", nargs="+", metavar="NAME",
                       help="bind only these of the dataset's classes, as a run with data.classes does (names as "
                       "the card spells them; quote names with spaces)")

    without = sub.add_parser("without", help="the ontology without some classes and the nodes only they use (to "
                             "try a trained model on classes added after training)")
    ontology_args(without)
    without.add_argument("classes", nargs="+", metavar="CLASS", help="names the ontology declares with kgnet:className")
    without.add_argument("-o", "--out", required=True, help="output file; format from its suffix (.ttl .nt .owl .jsonld)")

    wordnet = sub.add_parser("wordnet", help="export a WordNet 3.0 subgraph as RDF")
    source = wordnet.add_mutually_exclusive_group(required=True)
    source.add_argument("--wnids", nargs="+", help="WordNet noun offsets such as n02084071")
    source.add_argument("--classes", nargs="+", help="class names (first noun sense; check the log)")
    source.add_argument("--dataset", help="dataset card name, e.g. cifar100")
    source.add_argument("--all-nouns", action="store_true", help="every noun synset (82,115)")
    wordnet.add_argument("-o", "--out", required=True, help="output file; format from its suffix (.ttl .nt .owl .jsonld [.gz])")
    wordnet.add_argument("--format", help="output format when the suffix does not say (turtle, nt, xml, json-ld)")
    return parser


def _print_info(summary: dict, path: str) -> None:
    print(f"ontology   {path}")
    print(f"triples    {summary['triples']:,}")
    print(f"nodes      {summary['nodes']:,}")
    print(f"edges      {summary['edges']:,} (+ as many inverse edges)")
    print(f"hierarchy  {summary['hierarchy_edges']:,} child->parent links")
    print(f"classes    {summary['classes']} declared with kgnet:className")
    print(f"relations  {len(summary['relations'])}")
    width = max((len(n) for n in summary["relations"]), default=0)
    for name, count in sorted(summary["relations"].items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {name:<{width}}  {count:,}")
    for warning in summary["warnings"]:
        print(f"warning: {warning}")


def _list_shipped(as_json: bool) -> None:
    files = {name: str(resolve_ontology(f"kgnet:{name}")) for name in shipped_ontologies()}
    if as_json:
        json.dump(files, sys.stdout, indent=2)
        print()
        return
    if not files:
        print("this installation of kgnet ships no ontologies (its kg/ folder is missing)")
        return
    width = max(len(n) for n in files)
    for name, path in files.items():
        print(f"{name:<{width}}  {path}")
    print("give a name to info/check (python -m kgnet.kg info NAME) or to knowledge.ontology")


def _check_inputs(args: argparse.Namespace) -> None:
    """Every file this command reads, and where it writes, before any work is done."""
    if args.command == "wordnet":
        output_file(args.out, "-o")
        return
    if args.command == "list":
        return
    # A shipped ontology's name becomes its file; the name stays what the output shows.
    args.shown = args.path
    resolved = resolve_ontology(args.path)
    if str(resolved) != args.path:
        args.shown = f"{args.path} ({resolved})"
    args.path = str(input_file(resolved))
    for path in args.imports:
        input_file(path, "--imports")
    if args.command == "without":
        output_file(args.out, "-o")
    if getattr(args, "class_map", None):
        input_file(args.class_map, "--class-map")
    if getattr(args, "predicate", None) is not None:
        # deferred: --help and bad input are answered before torch and rdflib load (~5 s)
        from kgnet.kg.class_mapping import check_predicate_iri

        check_predicate_iri(args.predicate, "--predicate")


@dataclasses.dataclass(frozen=True)
class _Dataset:
    """The classes `check` binds: a card's, or an image folder's."""

    name: str
    classes: list[str]
    wnids: list[str | None]
    folders: dict[str, str] | None  # folder name -> class name, accepted by --classes


def _dataset_classes(dataset: str) -> _Dataset:
    """The classes of `--dataset`: a card name or card file, or an image folder (a path to a folder
    holding train/ and val/ or test/, read as `data.name=imagefolder data.root=PATH` reads it)."""
    path = Path(dataset).expanduser()
    if path.is_dir():
        # deferred: the image-folder scan loads torch and PIL (~2 s); a card needs neither
        from kgnet.data.imagefolder import scan_image_folder

        tree = scan_image_folder(path)
        wnids = list(tree.wnids) if tree.wnids else [None] * len(tree.class_names)
        return _Dataset(f"image folder {path}", list(tree.class_names), wnids,
                        dict(zip(tree.folders, tree.class_names)))
    card = load_card(dataset)
    folders = dict(zip(card.wnids, card.classes)) if card.format == "imagefolder" else None
    return _Dataset(card.name, list(card.classes), list(card.wnids), folders)


@user_errors_exit_2
def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    setup_logging(args.verbose)
    with libraries_loading():
        # deferred: --help and bad input are answered before torch and rdflib load (~5 s)
        from kgnet.data.builder import select_classes
        from kgnet.kg.build import load_knowledge_graph
        from kgnet.kg.edit import without_classes
        from kgnet.kg.load import parse_rdf_file
        from kgnet.kg.vocab import KGNET
        from kgnet.kg.wordnet import write_graph

    _check_inputs(args)
    if args.command == "check":  # the classes to bind, before the ontology is read
        dataset = _dataset_classes(args.dataset)
        classes, wnids = list(dataset.classes), list(dataset.wnids)
        if args.classes:
            chosen = select_classes(args.classes, dataset.classes, what="--classes", aliases=dataset.folders)
            classes, wnids = [classes[c] for c in chosen], [wnids[c] for c in chosen]
    if args.command == "list":
        _list_shipped(args.json)
        return 0
    if args.command == "wordnet":
        # deferred: only --wordnet reads WordNet
        from kgnet.kg.wordnet import export_ontology

        graph = export_ontology(
            wnids=args.wnids, classes=args.classes, dataset=args.dataset, all_nouns=args.all_nouns, out=args.out,
            fmt=args.format,
        )
        print(f"wrote {args.out}: {len(graph):,} triples")
        return 0

    if args.command == "without":
        graph = without_classes(parse_rdf_file(args.path, args.format), args.classes, args.shown)
        write_graph(graph, args.out)
        print(f"wrote {args.out}: {len(graph):,} triples, without {', '.join(args.classes)} and the nodes only "
              "they used")
        return 0
    kg = load_knowledge_graph(args.path, args.format, args.imports, use_cache=not args.no_cache)
    if args.command == "info":
        summary = kg.summary()
        summary["classes"] = len(kg.literals.get(str(KGNET.className), ()))
        if args.json:
            json.dump(summary, sys.stdout, indent=2)
            print()
        else:
            _print_info(summary, args.shown)
        return 0

    # deferred: torch loads only when classes are bound
    from kgnet.kg.class_mapping import bind_classes

    bound = bind_classes(
        kg, classes, mapping_file=args.class_map, predicate=args.predicate, wnids=wnids, source=args.path,
        predicate_setting="--predicate", dataset_classes=dataset.classes,
    )
    sub = bound.k_hop_subgraph(args.hops)
    total = len(dataset.classes)
    which = f"{len(classes)} of the {total}" if len(classes) < total else f"all {len(classes)}"
    print(f"{which} classes of {dataset.name} bind to nodes of {args.shown}:")
    for name, node in zip(bound.class_names, bound.class_index.tolist()):
        print(f"  {name:<24} -> <{bound.node_iris[node]}> {bound.node_labels[node]!r}")
    print(
        f"{args.hops}-hop subgraph: {sub.num_nodes:,} nodes ({sub.num_nodes - len(classes):,} beyond the "
        f"classes), {sub.num_edges // 2:,} edges"
    )
    for warning in bound.warnings:
        print(f"warning: {warning}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
