"""What every kgnet command line shares: logging set-up and the user-error contract.

A `KgnetError` becomes one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from typing import Callable, Sequence

from kgnet.errors import KgnetError

log = logging.getLogger("kgnet")


def setup_logging(verbose: bool = False) -> None:
    """Log kgnet's messages to stderr, `-v` for debug detail.

    When stderr is no terminal (a redirected log), the Hugging Face libraries' download and
    weight-loading bars are switched off too (`kgnet.progress` says why), before they load.
    """
    from kgnet.progress import interactive

    if not interactive():
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def user_errors_exit_2(main: Callable[[Sequence[str] | None], int | None]):
    """Wrap a CLI `main(argv)` so a user's mistake prints a message and exits 2."""

    @functools.wraps(main)
    def wrapped(argv: Sequence[str] | None = None) -> int:
        try:
            return main(argv) or 0
        except KgnetError as err:
            print(f"error: {err}", file=sys.stderr)
            return err.exit_code
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130

    return wrapped
