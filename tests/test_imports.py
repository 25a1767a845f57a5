"""kgnet's imports sit at the top of each module; an import inside a function says why (issue 20).

A function-local import is allowed where its measured cost matters (torch, timm, nltk,
scikit-learn... before a CLI has checked its arguments) or where loading order does
(huggingface_hub reads its settings when it loads). It then carries a `# deferred:` comment
with that reason, so a reader never wonders and a new one cannot slip in unnoticed.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "kgnet"


def _local_import_groups(tree: ast.AST):
    """The first statement of each run of adjacent import statements inside a function."""
    for function in ast.walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for block in ast.walk(function):
            for field in ("body", "orelse", "finalbody", "handlers"):
                statements = getattr(block, field, None)
                if not isinstance(statements, list):
                    continue
                previous_import = False
                for statement in statements:
                    is_import = isinstance(statement, (ast.Import, ast.ImportFrom))
                    if is_import and not previous_import:
                        yield statement
                    previous_import = is_import


def _reason(lines: list[str], lineno: int) -> str | None:
    """The `# deferred:` comment on the import's line or in the comment lines just above it."""
    if "# deferred:" in lines[lineno - 1]:
        return lines[lineno - 1]
    row = lineno - 2
    while row >= 0 and lines[row].strip().startswith("#"):
        if "# deferred:" in lines[row]:
            return lines[row]
        row -= 1
    return None


def test_every_function_local_import_says_why_it_is_deferred():
    unexplained = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text()
        lines = source.splitlines()
        groups = {s.lineno: s for s in _local_import_groups(ast.parse(source))}  # a nested function is walked twice
        for statement in groups.values():
            if _reason(lines, statement.lineno) is None:
                unexplained.append(f"{path.relative_to(PACKAGE.parent)}:{statement.lineno}: "
                                   f"{lines[statement.lineno - 1].strip()}")
    assert not unexplained, "move these imports to the module top or say why they wait (# deferred: ...):\n" + \
        "\n".join(unexplained)


def test_the_rule_sees_an_unexplained_local_import():
    tree = ast.parse("def f():\n    import json\n    return json\n\ndef g():\n    # deferred: costly\n    import torch\n")
    lines = ["def f():", "    import json", "    return json", "", "def g():", "    # deferred: costly", "    import torch"]
    found = [(s.lineno, _reason(lines, s.lineno)) for s in _local_import_groups(tree)]
    assert found == [(2, None), (7, "    # deferred: costly")]


@pytest.mark.parametrize("module", ["kgnet", "kgnet.cli", "kgnet.checks", "kgnet.config", "kgnet.predict",
                                    "kgnet.evaluate", "kgnet.kg.__main__", "kgnet.train", "kgnet.explain.__main__"])
def test_light_modules_stay_light(module):
    """What the deferred imports buy: the CLIs parse and check arguments without torch loaded."""
    code = f"import importlib, sys; importlib.import_module({module!r}); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False", f"importing {module} loads torch"

