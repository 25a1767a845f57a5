"""From ontology files to the class-centred graph a model trains on, with an on-disk cache.

Compiling full WordNet takes seconds; loading the compiled tensors takes well under one. The
cache key is the SHA-256 of every input file's bytes, the format, the rdflib version and the
source of kgnet's own compiler, so an edited ontology or an upgraded compiler never meets a
stale entry.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Sequence

import rdflib

from kgnet.checks import input_file
from kgnet.kg import class_mapping, compile as compile_mod, graph as graph_mod, load as load_mod
from kgnet.kg.graph import KnowledgeGraph
from kgnet.paths import cache_dir

log = logging.getLogger(__name__)

_COMPILER_SOURCES = (load_mod.__file__, compile_mod.__file__, graph_mod.__file__)


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def graph_cache_key(path: str | Path, fmt: str | None = None, imports: Sequence[str | Path] = ()) -> str:
    """Content hash of everything that determines the compiled graph."""
    digest = hashlib.sha256()
    digest.update(f"rdflib={rdflib.__version__};format={fmt}\n".encode())
    for source in _COMPILER_SOURCES:
        digest.update(Path(source).read_bytes())
    for file in [Path(path), *map(Path, imports)]:
        input_file(file)  # a missing or unreadable file is the user's error, not a crash here
        digest.update(f"{file.name}:{_file_digest(file)}\n".encode())
    return digest.hexdigest()[:32]


def load_knowledge_graph(
    path: str | Path,
    fmt: str | None = None,
    imports: Sequence[str | Path] = (),
    *,
    use_cache: bool = True,
) -> KnowledgeGraph:
    """Load and compile an ontology (plus local import files), using the cache when valid."""
    cache_file = None
    if use_cache:
        cache_file = cache_dir() / "graphs" / f"{graph_cache_key(path, fmt, imports)}.pt"
        if cache_file.is_file():
            try:
                kg = KnowledgeGraph.load(cache_file)
                log.debug("compiled graph from cache %s", cache_file)
                return kg
            except Exception as err:  # noqa: BLE001 - a damaged cache entry is rebuilt, not fatal
                log.warning("ignoring unreadable cache entry %s (%s)", cache_file, err)
    start = time.perf_counter()
    loaded = load_mod.load_ontology(path, fmt, imports)
    parsed = time.perf_counter()
    kg = compile_mod.compile_graph(loaded.graph)
    kg.warnings = loaded.warnings + kg.warnings
    log.info(
        "compiled %s: %d triples -> %d nodes, %d edges, %d relations (parse %.1fs, compile %.1fs)",
        path, len(loaded.graph), kg.num_nodes, kg.num_edges // 2, kg.num_base_relations,
        parsed - start, time.perf_counter() - parsed,
    )
    if cache_file is not None:
        kg.save(cache_file)
    return kg


def build_class_graph(
    path: str | Path,
    class_names: Sequence[str],
    *,
    hops: int = 2,
    wnids: Sequence[str | None] | None = None,
    mapping_file: str | Path | None = None,
    predicate: str | None = None,
    fmt: str | None = None,
    imports: Sequence[str | Path] = (),
    use_cache: bool = True,
    dataset_classes: Sequence[str] | None = None,
) -> KnowledgeGraph:
    """The graph a model uses: the ontology bound to the classes, cut to their k-hop neighbourhood.

    `dataset_classes`: all the data set's classes when `class_names` are some of them
    (`kgnet.kg.class_mapping.bind_classes`).
    """
    kg = load_knowledge_graph(path, fmt, imports, use_cache=use_cache)
    for warning in kg.warnings:
        log.warning(warning)
    bound = class_mapping.bind_classes(
        kg, class_names, mapping_file=mapping_file, predicate=predicate, wnids=wnids, source=str(path),
        dataset_classes=dataset_classes,
    )
    for warning in bound.warnings[len(kg.warnings):]:  # what binding added
        log.warning(warning)
    return bound.k_hop_subgraph(hops)
