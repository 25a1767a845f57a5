"""Progress displays: a bar at a terminal, a line a minute in a redirected log."""

from __future__ import annotations

import logging

from kgnet import progress as progress_mod
from kgnet.progress import LoggedProgress, progress


def test_a_redirected_log_gets_a_timed_line_not_bar_refreshes(monkeypatch, caplog) -> None:
    assert not progress_mod.interactive()  # pytest captures stderr: as in `make demo > log`
    clock = iter(float(t) for t in [0, 10, 30, 61, 70, 125, 130])
    monkeypatch.setattr(progress_mod.time, "monotonic", lambda: next(clock))
    with caplog.at_level(logging.INFO, logger="kgnet.progress"):
        bar = progress(range(6), desc="baseline epoch 1/3", unit="batch")
        assert isinstance(bar, LoggedProgress)
        for step, _ in enumerate(bar):
            bar.set_postfix(loss=f"{1 / (step + 1):.3f}")
    lines = [r.getMessage() for r in caplog.records if r.name == "kgnet.progress"]
    # started at 0; steps end at 10, 30, 61 (a line), 70, 125 (a line), 130
    assert lines == ["baseline epoch 1/3: 3/6 (50%), 20.3 s/batch, 1:01 left, loss=0.333",
                     "baseline epoch 1/3: 5/6 (83%), 25.0 s/batch, 0:25 left, loss=0.200"]


def test_short_loops_and_disabled_displays_say_nothing(caplog) -> None:
    with caplog.at_level(logging.INFO, logger="kgnet.progress"):
        assert list(progress(range(3), desc="quick")) == [0, 1, 2]
        assert list(progress(range(3), desc="off", enabled=False)) == [0, 1, 2]
    assert not [r for r in caplog.records if r.name == "kgnet.progress"]


def test_a_terminal_gets_a_tqdm_bar(monkeypatch) -> None:
    from tqdm.auto import tqdm

    monkeypatch.setattr(progress_mod, "interactive", lambda: True)
    bar = progress(range(3), desc="at a terminal")
    assert isinstance(bar, tqdm) and list(bar) == [0, 1, 2]
    assert isinstance(progress(range(3), desc="rank 1", enabled=False), LoggedProgress)


def test_manual_updates_with_a_total() -> None:
    bar = LoggedProgress(None, desc="faithfulness", total=4, unit="batch", every=None)
    for _ in range(4):
        bar.update()
    assert bar.n == 4 and bar.line().startswith("faithfulness: 4/4 (100%)")
