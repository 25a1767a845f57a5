"""What every kgnet command line shares: logging set-up and the user-error contract.

A `KgnetError` becomes one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import os
import signal
import sys
import threading
from typing import Callable, Iterator, Sequence

from kgnet.errors import KgnetError
from kgnet.progress import interactive

log = logging.getLogger("kgnet")


def setup_logging(verbose: bool = False) -> None:
    """Log kgnet's messages to stderr, `-v` for debug detail.

    When stderr is no terminal (a redirected log), the Hugging Face libraries' download and
    weight-loading bars are switched off too (`kgnet.progress` says why), before they load.
    """
    if not interactive():
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


#: The longest name one path component may have on the file systems kgnet writes to (bytes).
NAME_MAX = 255


def path_argument(text: str) -> str:
    """An argparse `type` for a path: refused when it can name no file (empty, a NUL byte, a
    component longer than the file system allows), so the command says so before anything runs."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; give a folder or file name")
    if "\0" in text:
        raise argparse.ArgumentTypeError("the path holds a NUL byte, which no file name can")
    long = next((part for part in text.split(os.sep) if len(os.fsencode(part)) > NAME_MAX), None)
    if long is not None:
        raise argparse.ArgumentTypeError(f"the path component {long[:40]!r}... is longer than {NAME_MAX} bytes, "
                                         "the longest name a file system allows")
    return text


def user_message(err: KgnetError) -> str:
    """The message of a user's mistake, as the user should read it.

    An error raised in a DataLoader worker process (`data.num_workers` > 0: an unreadable image
    file) reaches the main process re-raised by torch with the worker's traceback written
    into its text; only the original message after that traceback is the user's.
    """
    text = str(err)
    marker = f"{type(err).__module__}.{type(err).__qualname__}: "
    if text.startswith("Caught ") and "\nOriginal Traceback" in text and marker in text:
        return text.rsplit(marker, 1)[1].rstrip()
    return text


#: What a command prints when Ctrl-C stops it (exit status 130, as a shell reports SIGINT).
INTERRUPTED = "interrupted"


def _exit_interrupted(signum: int, frame: object) -> None:
    os.write(2, f"{INTERRUPTED}\n".encode())
    os._exit(130)


@contextlib.contextmanager
def libraries_loading() -> Iterator[None]:
    """Ctrl-C while a command loads torch and the other libraries exits 130 at once, with one line.

    A KeyboardInterrupt raised inside a library's import is not reliable: torch catches errors
    around its numpy import (a Ctrl-C there is swallowed, or leaves numpy half-loaded to fail
    later with a traceback), and one raised through compiled code can make Python die by SIGINT
    whatever the command returns (measured: 4 of 16 Ctrl-Cs 0.9-1.1 s into `kgnet.train`).
    Nothing is written while the libraries load, so stopping at once loses nothing. Outside
    this block Ctrl-C is a KeyboardInterrupt, which lets a run remove what it made.
    """
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield  # a handler of the caller's (or SIGINT ignored, under nohup) stays as it is
        return
    signal.signal(signal.SIGINT, _exit_interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def user_errors_exit_2(main: Callable[[Sequence[str] | None], int | None]):
    """Wrap a CLI `main(argv)` so a user's mistake prints a message and exits 2."""

    @functools.wraps(main)
    def wrapped(argv: Sequence[str] | None = None) -> int:
        try:
            return main(argv) or 0
        except KgnetError as err:
            print(f"error: {user_message(err)}", file=sys.stderr)
            return err.exit_code
        except KeyboardInterrupt:
            print(INTERRUPTED, file=sys.stderr)
            return 130
        except BrokenPipeError:  # the output was piped into a command that stopped reading (`| head`)
            sys.stderr.close()
            return 0

    return wrapped
