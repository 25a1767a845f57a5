"""Benchmark: compiling the full WordNet noun graph, cold and from the cache.

Exports all 82,115 WordNet 3.0 noun synsets to N-Triples, then measures in fresh processes
(so each peak RSS is its own; the peak is reset after imports): rdflib's own parse of the file, kgnet's cold compile (parse +
compile + cache write, empty cache) and its warm load (cache hit). Targets on 2 cores: cold
within 2x of rdflib's parse, warm under 1 s.

    python benchmarks/kg_compile.py [--out benchmarks/results/kg_compile.json] [--repeats 1]

`measure()` returns the same numbers as a dict; `benchmarks.run` calls it for its cost cell.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PHASE = r"""
import json, sys, time
phase, path = sys.argv[1], sys.argv[2]
import rdflib, torch  # imported before the clock starts: we time the work, not imports
from kgnet.kg.build import load_knowledge_graph

def status_mb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024

rss0 = status_mb("VmRSS")
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")  # reset the peak (VmHWM) so it measures the work below, not the imports
start = time.perf_counter()
if phase == "rdflib_parse":
    graph = rdflib.Graph()
    graph.parse(path, format=rdflib.util.guess_format(path) or "nt")
    size = {"triples": len(graph)}
else:
    kg = load_knowledge_graph(path)
    size = {"nodes": kg.num_nodes, "edges": kg.num_edges // 2, "relations": kg.num_base_relations}
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak_rss_mb": status_mb("VmHWM"), "rss_after_imports_mb": rss0, **size}))
"""


def run_phase(phase: str, path: Path, cache: Path) -> dict:
    env = {**os.environ, "KGNET_CACHE": str(cache)}
    result = subprocess.run(
        [sys.executable, "-c", PHASE, phase, str(path)], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure(repeats: int = 1, source: str | os.PathLike | None = None) -> dict:
    """Time rdflib's parse, kgnet's cold compile and its warm load; one JSON-ready dict.

    Args:
        repeats: Runs of each phase; the median is reported.
        source: An RDF file to compile instead of the full WordNet noun export (a quick check).
    """
    with tempfile.TemporaryDirectory() as tmp:
        if source is None:
            from kgnet.kg.wordnet import export_ontology

            nt = Path(tmp) / "wordnet-nouns.nt"
            start = time.perf_counter()
            graph = export_ontology(all_nouns=True, out=nt)
            export_seconds = time.perf_counter() - start
            triples = len(graph)
            del graph
            described = "all WordNet 3.0 noun synsets, exported to N-Triples"
        else:
            import rdflib

            nt = Path(source)
            export_seconds = 0.0
            triples = len(rdflib.Graph().parse(nt))
            described = str(source)
        runs: dict[str, list[dict]] = {"rdflib_parse": [], "kgnet_cold": [], "kgnet_warm": []}
        for i in range(repeats):
            cache = Path(tmp) / f"cache{i}"
            runs["rdflib_parse"].append(run_phase("rdflib_parse", nt, cache))
            runs["kgnet_cold"].append(run_phase("cold", nt, cache))  # empty cache: compiles and writes it
            runs["kgnet_warm"].append(run_phase("warm", nt, cache))  # same cache: a hit
        file_mb = nt.stat().st_size / 2**20

    def median(phase: str) -> dict:
        ordered = sorted(runs[phase], key=lambda r: r["seconds"])
        return ordered[len(ordered) // 2]

    parse, cold, warm = median("rdflib_parse"), median("kgnet_cold"), median("kgnet_warm")
    report = {
        "machine": (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                    f"Python {platform.python_version()}"),
        "source": described,
        "file": {"triples": triples, "megabytes": round(file_mb, 1), "export_seconds": round(export_seconds, 1)},
        "graph": {k: cold[k] for k in ("nodes", "edges", "relations")},
        "rdflib_parse_seconds": round(parse["seconds"], 2),
        "cold_compile_seconds": round(cold["seconds"], 2),
        "warm_load_seconds": round(warm["seconds"], 3),
        "cold_over_parse": round(cold["seconds"] / parse["seconds"], 2),
        "peak_rss_mb": {k: round(median(k)["peak_rss_mb"]) for k in runs},
        "rss_after_imports_mb": round(cold["rss_after_imports_mb"]),
        "targets": {"cold_over_parse_max": 2.0, "warm_seconds_max": 1.0},
        "repeats": repeats,
    }
    report["meets_targets"] = report["cold_over_parse"] <= 2.0 and report["warm_load_seconds"] < 1.0
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="benchmarks/results/kg_compile.json")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each phase; the median is reported")
    args = parser.parse_args()

    from kgnet.atomic import write_text_atomic

    report = measure(args.repeats)
    out = Path(args.out)
    write_text_atomic(out, json.dumps(report, indent=2) + "\n")
    triples, file_mb = report["file"]["triples"], report["file"]["megabytes"]
    graph = report["graph"]
    print(f"WordNet nouns: {triples:,} triples ({file_mb:.0f} MB N-Triples), exported in "
          f"{report['file']['export_seconds']:.1f}s")
    print(f"graph: {graph['nodes']:,} nodes, {graph['edges']:,} edges, {graph['relations']} relations")
    print(f"{'phase':<14}{'seconds':>9}{'peak RSS MB':>13}")
    for name, key, phase in (("rdflib parse", "rdflib_parse_seconds", "rdflib_parse"),
                             ("kgnet cold", "cold_compile_seconds", "kgnet_cold"),
                             ("kgnet warm", "warm_load_seconds", "kgnet_warm")):
        print(f"{name:<14}{report[key]:>9.2f}{report['peak_rss_mb'][phase]:>13.0f}")
    print(f"cold / parse = {report['cold_over_parse']:.2f} (target <= 2.0); warm = "
          f"{report['warm_load_seconds']:.3f}s (target < 1 s)")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
