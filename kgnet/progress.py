"""Progress bars that help at a terminal and stay out of a redirected log.

At a terminal (stderr is a TTY) a loop a person waits for shows a tqdm bar that disappears
when it is done. When stderr goes to a file or a pipe (`make demo > log 2>&1`, a batch job, a
benchmark cell's log), every refresh of a bar would be one more stretch of carriage-return
noise in the file, so there a loop instead logs one line every `LOG_EVERY` seconds
(`baseline epoch 1/3: 120/421 (29%), 2.1 batch/s, 2:14 left, loss=0.512`) and nothing at all when
it is over sooner.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Iterable, Iterator

log = logging.getLogger("kgnet.progress")

#: Seconds between two progress lines in a redirected log.
LOG_EVERY = 60.0


def interactive() -> bool:
    """Whether stderr is a terminal (where bars are drawn)."""
    stream = sys.stderr
    return bool(getattr(stream, "isatty", None)) and stream.isatty()


def progress(iterable: Iterable | None = None, *, desc: str, total: int | None = None, unit: str = "it",
             enabled: bool = True):
    """Wrap a loop in a progress display: a tqdm bar at a terminal, else timed log lines.

    Both support what kgnet's loops use of tqdm: iteration, `update(n)`, `set_postfix(...)`,
    `close()` and use as a context manager.

    Args:
        iterable: What the loop runs over (None with `total`, and `update` called by hand).
        desc: What is being waited for.
        total: Number of steps; None = `len(iterable)` where it has one.
        unit: What one step is ("batch", "img", ...).
        enabled: False shows nothing (e.g. on every process but the first of a torchrun job).
    """
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)
    if enabled and interactive():
        # deferred: tqdm.auto takes ~0.1 s to import (90 ms of kgnet.cli's 118 ms, measured quiet); logs need
        # no bar
        from tqdm.auto import tqdm

        return tqdm(iterable, desc=desc, total=total, unit=unit, leave=False, dynamic_ncols=True)
    return LoggedProgress(iterable, desc=desc, total=total, unit=unit, every=LOG_EVERY if enabled else None)


class LoggedProgress:
    """tqdm's small interface, logging a line every `every` seconds (never with None)."""

    def __init__(self, iterable: Iterable | None, *, desc: str, total: int | None, unit: str,
                 every: float | None) -> None:
        self.iterable, self.desc, self.total, self.unit, self.every = iterable, desc, total, unit, every
        self.n = 0
        self.started = self.last = time.monotonic()
        self.postfix: dict[str, Any] = {}

    def __iter__(self) -> Iterator:
        for item in self.iterable:
            yield item
            self.update()

    def __len__(self) -> int:
        return self.total or 0

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.every is None:
            return
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            log.info("%s", self.line(now))

    def line(self, now: float | None = None) -> str:
        """The progress line as logged: done/total, rate, time left, postfix."""
        elapsed = max((now or time.monotonic()) - self.started, 1e-9)
        rate = self.n / elapsed
        parts = [f"{self.n}/{self.total} ({100 * self.n / self.total:.0f}%)" if self.total else f"{self.n}",
                 f"{rate:.1f} {self.unit}/s" if rate >= 1 or rate == 0 else f"{1 / rate:.1f} s/{self.unit}"]
        if self.total and rate > 0:
            left = int((self.total - self.n) / rate)
            parts.append(f"{left // 60}:{left % 60:02d} left")
        parts += [f"{key}={value}" for key, value in self.postfix.items()]
        return f"{self.desc}: {', '.join(parts)}"

    def set_postfix(self, **values: Any) -> None:
        self.postfix = values

    def close(self) -> None:
        pass

    def __enter__(self) -> "LoggedProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
