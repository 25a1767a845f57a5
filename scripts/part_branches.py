"""Count the conditions in `kgnet/` that branch on which part, head or variant a model has.

A model composed of parts should ask a part what it needs, not test which one it is. This scan
(issue 33) counts every condition (`if`, `elif`, `while`, a conditional expression, a
comprehension's `if`, `assert`) that does one of:

- `is None` / `is not None` on a model part or on an output only some parts fill
  (`graph_encoder`, `infusion`, `model.head`, `encoder.graph`, `attention`, `concepts`, ...);
- compares a head, variant, part or control name as a string (`spec.name == "concept"`,
  `explains == "gradcam"`, `text_control != "off"`, `"wide" in scales`);
- reads a part flag (`concept_vectors`, `concept_infusion`, `reads`, `aligns`, `explains`,
  `scales`, `message_passing`, `learn_weights`, ...).

A condition counts once however many of these it holds. Run from the repository root:

    python scripts/part_branches.py            # the count and one line per condition
    python scripts/part_branches.py --count    # the count only
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

#: Names that are a model part, or an output only some parts fill, as a variable or an attribute.
PARTS = {
    "graph_encoder", "encoder", "infusion", "stage_infusion", "concept_head", "mlp", "prototype", "node_index",
    "concepts", "attention", "class_embeddings", "node_embeddings", "prototype_logits", "class_concepts",
    "token_node_ids", "token_labels", "concept_names", "kg_attention", "stage_attention", "group_assignment",
}
#: Names that are a part only as an attribute of a model or a part (`model.head`, `encoder.graph`,
#: `head.matrix`): a variable of that name is data (the class graph a function is given, the
#: head of an RDF list, text features passed in).
PART_ATTRIBUTES = {"head", "graph", "view", "matrix", "text_features", "text_proj", "groups"}
#: Strings that name a head, a variant, a part, a control or a knowledge scale.
NAMES = {
    "plain", "concept", "prototype", "baseline", "kgnet", "kgnet-composed", "kgnet-prototype", "free", "graph",
    "both", "tokens", "pooled", "gradcam", "contributions", "attention", "identity", "permuted", "random", "off",
    "shuffled", "empty", "category", "relation", "wide", "rgcn", "infusion", "cross_attention",
}
#: Attributes that are a part's flag: reading one in a condition decides what the model has.
FLAGS = {
    "concept_vectors", "concept_infusion", "reads", "aligns", "explains", "scales", "message_passing",
    "learn_weights", "free_vectors", "every_node_is_token", "concept_control", "text_control", "graph_control",
    "idle_relations", "self_columns", "fixed_concepts", "sparse_request", "head_name", "uses_graph",
}


def _part(node: ast.AST) -> str | None:
    """The part `node` names, if it names one (see PARTS and PART_ATTRIBUTES)."""
    name = _name(node)
    if name in PARTS or (name in PART_ATTRIBUTES and not isinstance(node, ast.Name)):
        return name
    return None


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr" \
            and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant):
        return str(node.args[1].value)
    return None


def _is_none(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _strings(node: ast.AST) -> set[str]:
    """The string constants of `node` itself or of a tuple/list/set literal."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
    return set()


def reasons(test: ast.AST) -> list[str]:
    """What in condition `test` branches on a part (empty: nothing)."""
    found = []
    for node in ast.walk(test):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for op, (left, right) in zip(node.ops, zip(operands, operands[1:])):
                if isinstance(op, (ast.Is, ast.IsNot)):
                    other = left if _is_none(right) else right if _is_none(left) else None
                    if other is not None and _part(other):
                        found.append(f"{_part(other)} is None")
                elif isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)):
                    named = (_strings(left) | _strings(right)) & NAMES
                    if named:
                        found.append(f"compares {sorted(named)[0]!r}")
        name = _name(node) if isinstance(node, (ast.Attribute, ast.Call)) else None
        if name in FLAGS:
            found.append(f"reads {name}")
    return found


def conditions(tree: ast.AST):
    """Every condition of `tree`: (line, test)."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.If, ast.While, ast.IfExp, ast.Assert)):
            yield node.lineno, node.test
        elif isinstance(node, ast.comprehension):
            for test in node.ifs:
                yield test.lineno, test


def scan(root: Path) -> list[tuple[str, int, list[str]]]:
    """(file, line, reasons) of every branching condition under `root`."""
    hits = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for line, test in conditions(tree):
            why = reasons(test)
            if why:
                hits.append((path.as_posix(), line, sorted(set(why))))
    return sorted(hits)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", nargs="?", default="kgnet", help="folder to scan (default kgnet)")
    parser.add_argument("--count", action="store_true", help="print the count only")
    args = parser.parse_args(argv)
    hits = scan(Path(args.root))
    if not args.count:
        for path, line, why in hits:
            print(f"{path}:{line}: {'; '.join(why)}")
        files = len({path for path, _, _ in hits})
        print(f"{len(hits)} conditions in {files} files branch on a part, head or variant")
    else:
        print(len(hits))
    return 0


if __name__ == "__main__":
    sys.exit(main())
