"""Every command's `--help`: quick (parsed before torch loads), complete (each option says what
it does and its default), and one line when the Python running it lacks kgnet's packages."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest

from conftest import COMMAND_MODULES, REPO

COMMANDS = ["kgnet.train", "kgnet.explain", "kgnet.predict", "kgnet.evaluate", "kgnet.kg"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_cli_answers_help_before_loading_torch(command):
    """Issue 37: `kgnet.train --help` took 8-9 s (torch and timm loaded first); every CLI parses first."""
    code = (f"import runpy, sys; sys.argv = [{command!r}, '--help']\n"
            f"try: runpy.run_module({command!r}, run_name='__main__', alter_sys=True)\n"
            "except SystemExit as stop: print('exit', stop.code, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("exit 0 False"), out[-300:]


def test_a_python_without_kgnets_packages_gets_one_line():
    """The README's `python -m kgnet...` typed outside the venv: one line saying what to do, exit 2."""
    done = subprocess.run([sys.executable, "-S", "-m", "kgnet.train", "--help"], capture_output=True, text=True,
                          cwd=REPO)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("error: this Python") and ". .venv/bin/activate" in done.stderr


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_says_what_it_does_and_its_default(command):
    """Issue 37: `predict --top-k` stated no default and `-v` had no help."""
    module = importlib.import_module(COMMAND_MODULES.get(command, command))
    parsers = [module._parser()]
    for action in parsers[0]._actions:
        if isinstance(action, argparse._SubParsersAction):
            parsers += list(action.choices.values())
    missing = []
    for parser in parsers:
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if not action.help:
                missing.append(f"{parser.prog} {'/'.join(action.option_strings) or action.dest}: no help")
            elif action.default not in (None, False, [], argparse.SUPPRESS) and "default" not in action.help:
                missing.append(f"{parser.prog} {'/'.join(action.option_strings)}: default {action.default!r} unsaid")
    assert not missing, missing
