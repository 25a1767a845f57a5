"""One run folder, one run: concurrent commands, half-recorded and edited runs, full disks, leftovers.

Each case replays a defect of issue 23 with the real commands: exit 0 with a correct result,
or exit 2 with one message naming the problem, and no mixed or half-made folder.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, TINY, TINY_OVERRIDES, run_cli
from kgnet.config import load_config
from kgnet.engine.run_claim import LOCK, claim_run_folder
from kgnet.errors import KgnetError
from kgnet.evaluate import main as evaluate
from kgnet.train import main as train
from kgnet.train import run


def _metrics(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def _copy(tiny_run, tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    shutil.copytree(tiny_run.folder, folder)
    return folder


def test_a_folder_another_command_holds_is_refused(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "run"
    with claim_run_folder(folder, "--out", new=True):
        assert train([*TINY, "--out", str(folder)]) == 2
        assert "another kgnet command is writing into this folder" in capsys.readouterr().err
        assert sorted(p.name for p in folder.iterdir()) == [LOCK]  # nothing of the refused run
    assert not folder.exists()  # the claim made the folder and removes it, lock and all


_CLAIM = """
import sys, time
from kgnet.engine.run_claim import claim_run_folder
from kgnet.errors import KgnetError
start = float(sys.argv[2])
while time.time() < start:
    pass
try:
    claim = claim_run_folder(sys.argv[1], "--out", new=True)
except KgnetError as err:
    print("refused:", err)
    sys.exit(2)
(claim.folder / "config.yaml").write_text(sys.argv[3])
time.sleep(1.0)
claim.release()
"""


def test_two_commands_started_together_into_one_folder_one_is_refused(tmp_path: Path) -> None:
    """Both pass the emptiness check at the same instant; the lock lets exactly one write."""
    folder = tmp_path / "run"
    start = time.time() + 2.0
    processes = [subprocess.Popen([sys.executable, "-c", _CLAIM, str(folder), str(start), f"seed: {seed}\n"],
                                  cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for seed in (0, 1)]
    outcomes = [(p.wait(timeout=60), p.stdout.read()) for p in processes]
    codes = sorted(code for code, _ in outcomes)
    assert codes == [0, 2], outcomes
    refused = next(out for code, out in outcomes if code == 2)
    assert "another kgnet command" in refused or "not empty" in refused or "holds a run already" in refused
    winner = next(i for i, (code, _) in enumerate(outcomes) if code == 0)
    assert sorted(p.name for p in folder.iterdir()) == ["config.yaml"]  # the lock is gone, one run's file
    assert (folder / "config.yaml").read_text() == f"seed: {winner}\n"


def test_a_refused_non_empty_folder_keeps_no_lock(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(KgnetError, match="not empty"):
        claim_run_folder(tmp_path, "--out", new=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_killed_runs_stale_lock_does_not_block(tmp_path: Path) -> None:
    """flock dies with its process: a lock file left by a SIGKILL is no claim."""
    folder = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", _CLAIM.replace("time.sleep(1.0)", "time.sleep(600)"),
                               str(folder), str(time.time()), "seed: 0\n"], cwd=REPO)
    deadline = time.time() + 60
    while not (folder / "config.yaml").exists() and time.time() < deadline:
        time.sleep(0.05)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (folder / LOCK).exists()
    with claim_run_folder(folder, "--resume", new=False):
        pass
    assert not (folder / LOCK).exists()


def test_resume_after_evaluate_re_records_a_half_recorded_variant(tiny_run, tmp_path: Path, capsys) -> None:
    """Killed between kgnet's release and its metrics.json entry, then evaluated, then resumed."""
    folder = _copy(tiny_run, tmp_path)
    recorded = _metrics(folder)
    (folder / "metrics.json").write_text(json.dumps({"baseline": recorded["baseline"]}))
    assert evaluate(["--run", str(folder), "--projection", "pca"]) == 0
    assert "params" not in _metrics(folder)["kgnet"]  # evaluate merged a test-only entry
    assert train(["--resume", str(folder)]) == 0
    resumed = _metrics(folder)["kgnet"]
    assert resumed["params"] == recorded["kgnet"]["params"]
    assert resumed["epochs"] == recorded["kgnet"]["epochs"] and resumed["top1"] == recorded["kgnet"]["top1"]
    assert "kgnet" in capsys.readouterr().out


@pytest.mark.parametrize("unfinished", [False, True], ids=["finished-variants", "unfinished-variant"])
def test_resume_refuses_an_edited_config(tiny_run, tmp_path: Path, capsys, unfinished: bool) -> None:
    folder = _copy(tiny_run, tmp_path)
    if unfinished:  # no variant recorded: each is compared through its last.pt
        (folder / "metrics.json").write_text("{}")
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["train"]["epochs"] += 1
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    before = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    assert train(["--resume", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "config.yaml was changed" in err and "train.epochs: 2 -> 3" in err
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == before


def test_resume_refuses_out(tiny_run, tmp_path: Path, capsys) -> None:
    other = tmp_path / "other"
    assert train(["--resume", str(tiny_run.folder), "--out", str(other)]) == 2
    assert "drop --out" in capsys.readouterr().err
    assert not other.exists()


def test_resume_removes_a_killed_writes_temporary(tiny_run, tmp_path: Path) -> None:
    folder = _copy(tiny_run, tmp_path)
    leftover = folder / "kgnet" / ".last.pt.k1ll3d.tmp"
    leftover.write_bytes(b"\0" * 4096)
    assert train(["--resume", str(folder)]) == 0
    assert not leftover.exists()


def test_every_file_of_a_run_has_an_ordinary_files_mode(tiny_run) -> None:
    umask = os.umask(0)
    os.umask(umask)
    modes = {str(p.relative_to(tiny_run.folder)): p.stat().st_mode & 0o777
             for p in tiny_run.folder.rglob("*") if p.is_file()}
    assert modes["kgnet/model.safetensors"] == 0o666 & ~umask
    assert set(modes.values()) == {0o666 & ~umask}, modes


def _file_size_limit(limit: int):
    def apply() -> None:  # in the child: writes past `limit` bytes fail with EFBIG instead of killing it
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_full_disk_is_exit_2_and_leaves_no_folder(tmp_path: Path) -> None:
    """The OS refuses the checkpoint's write (a file-size limit stands in for a full disk:
    both fail write(2) with an errno), so the run stops with one message and removes its folder."""
    folder = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "kgnet.train", *TINY, "--set", "variants=[baseline]",
                             "--out", str(folder)], cwd=REPO, capture_output=True, text=True, timeout=600,
                            preexec_fn=_file_size_limit(1 << 20))
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "last.pt: cannot write it" in last, last
    assert not folder.exists()


def test_a_write_the_os_refuses_names_the_file(tmp_path: Path) -> None:
    """The same refusal in this process, for each kind of writer (text, torch.save, safetensors)."""
    import torch
    from safetensors.torch import save_file

    from kgnet.atomic import atomic_path, write_text_atomic
    from kgnet.errors import WriteError

    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, limit[1]))
    try:
        writers = {
            "a.txt": lambda tmp: tmp.write_text("x" * 10_000),
            "a.pt": lambda tmp: torch.save(torch.zeros(10_000), tmp),
            "a.safetensors": lambda tmp: save_file({"w": torch.zeros(10_000)}, str(tmp)),
        }
        for name, write in writers.items():
            with pytest.raises(WriteError, match=f"{name}: cannot write it"):
                with atomic_path(tmp_path / name) as tmp:
                    write(tmp)
        with pytest.raises(WriteError):
            write_text_atomic(tmp_path / "b.txt", "y" * 10_000)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
        signal.signal(signal.SIGXFSZ, handler)
    assert list(tmp_path.iterdir()) == []  # no temporary file, no half-written one


def test_a_short_run_that_stops_on_a_user_error_leaves_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    with pytest.raises(KgnetError):
        run(load_config(None, (*TINY_OVERRIDES, "variants=[kgnet-nope]")), folder)
    assert not folder.exists()


def test_the_cli_refuses_a_held_folder_in_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    with claim_run_folder(folder, "--out", new=True):
        result = run_cli("kgnet.train", "--set", "variants=[baseline]", "--out", str(folder))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: --out")
