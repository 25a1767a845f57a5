"""One run folder, one run: an exclusive lock held while a command writes into a run folder, and
the same for the output folder of a command that writes beside a run (`kgnet.explain`).

Two trainings given the same `--out` would both pass an emptiness check made before either
writes, and leave one folder mixing two runs. So a command that writes into a run folder
first takes `<folder>/.kgnet.lock` with `flock` (released by the kernel when the process
dies, so a killed run never leaves a folder locked), then checks the folder again. Under
torchrun only the primary process (RANK 0) takes it: the ranks of one job share one claim.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path

from kgnet.checks import output_folder, run_folder
from kgnet.errors import KgnetError

#: The lock file inside a run folder while a command writes into it (removed when it ends).
LOCK = ".kgnet.lock"


def is_primary_process() -> bool:
    """Whether this process writes the run folder: not a non-zero rank of a torchrun job."""
    return os.environ.get("RANK", "0") == "0"


def _contents(folder: Path) -> list[Path]:
    """What the folder holds besides the lock file."""
    return [p for p in folder.iterdir() if p.name != LOCK]


class RunClaim:
    """This process's hold on a run folder; `release` gives it back (and removes what the claim made)."""

    def __init__(self, folder: Path, fd: int, *, created: bool, parents: tuple[Path, ...] = ()) -> None:
        self.folder, self._fd, self.created, self.parents = folder, fd, created, parents

    def release(self) -> None:
        """Remove the lock file and unlock; a folder the claim created and nothing filled is removed too."""
        if self._fd < 0:
            return
        (self.folder / LOCK).unlink(missing_ok=True)  # while still held, so no other process holds this inode
        os.close(self._fd)  # closing the last descriptor drops the flock
        self._fd = -1
        if self.created and self.folder.is_dir() and not any(self.folder.iterdir()):
            self.folder.rmdir()
        if self.created and not self.folder.exists():  # gone (removed above, or by a failed command)
            remove_empty(self.parents)

    def __enter__(self) -> RunClaim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def missing_parents(folder: Path) -> tuple[Path, ...]:
    """The folders above `folder` that do not exist yet, nearest first (a `mkdir(parents=True)`
    creates them; a claim that ends with nothing made removes them again)."""
    return tuple(p for p in folder.parents if not p.exists())


def remove_empty(folders: tuple[Path, ...]) -> None:
    """Remove each of `folders` (nearest first) while it is empty."""
    for parent in folders:
        try:
            parent.rmdir()
        except OSError:  # not empty (another command wrote there), or gone
            return


def _lock(folder: Path, name: str) -> int:
    """A descriptor holding the flock on `folder`/LOCK, or KgnetError when another process holds it."""
    path = folder / LOCK
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as err:
            raise KgnetError(f"{name}: cannot write into the folder ({err.strerror}); choose another folder") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise KgnetError(f"{name}: another kgnet command is writing into this folder right now; wait for "
                                 "it to finish, or choose another folder") from None
            raise KgnetError(f"{name}: cannot lock the folder ({err.strerror}); choose a folder on a local disk") \
                from None
        try:  # the holder before us may have removed the file after we opened it: lock the one that is there
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def claim_run_folder(folder: str | os.PathLike, what: str, *, new: bool) -> RunClaim:
    """Take the run folder `folder` for this process.

    Args:
        folder: The run folder.
        what: The flag it came from ("--out", "--resume", "--run"), for the messages.
        new: A new run: the folder must not exist or be empty (it is created); otherwise it
            must be a run folder already (`--resume`, `python -m kgnet.evaluate`).

    Raises:
        KgnetError: Not empty (new), not a run folder, or another command holds it. Nothing
            is left behind: neither the lock file nor a folder this call created.
    """
    folder = Path(folder).expanduser()
    name = f"{what} {folder}"
    parents: tuple[Path, ...] = ()
    if new:
        if folder.is_dir() and (folder / "config.yaml").is_file():
            raise KgnetError(f"{name}: the folder holds a run already; continue it (a killed run) with --resume "
                             f"{folder}, or pick a new folder")
        if not (folder.is_dir() and not _contents(folder)):  # empty, or holding a killed run's stale lock only
            output_folder(folder, what)
        parents = missing_parents(folder)
        try:  # exactly one of two processes creating it at once is told it did
            folder.mkdir(parents=True)
            created = True
        except FileExistsError:
            created = False
    else:
        run_folder(folder, what)
        created = False
    try:
        claim = RunClaim(folder, _lock(folder, name), created=created, parents=parents)
    except KgnetError:
        if created:
            with contextlib.suppress(OSError):  # the other process may have filled it already
                folder.rmdir()
                remove_empty(parents)
        raise
    if new and _contents(folder):  # another run filled it between the check and the lock
        claim.release()
        raise KgnetError(f"{name}: the folder is not empty (another run wrote into it); pick a new one")
    return claim


def claim_output_folder(folder: str | os.PathLike, what: str, *, owner: str) -> RunClaim:
    """Take `folder` for a command that fills a folder of its own (`kgnet.explain --out`).

    A folder is the command's when it is new, empty, or holds the command's marker file `owner`
    (written by an earlier call of the same command): anything else that is not empty is a
    user's folder, or a run folder, and is refused, so nothing the user owns is overwritten or
    deleted. The marker is written once the lock is held; two calls on one folder at once are
    refused as two trainings are.

    Raises:
        KgnetError: a folder the command does not own, a file, or another command holds it.
    """
    folder = Path(folder).expanduser()
    name = f"{what} {folder}"
    if folder.is_dir() and _contents(folder) and not (folder / owner).is_file():
        raise KgnetError(f"{name}: the folder holds files kgnet did not write there (no {owner}), so it is not "
                         "touched; give a new or empty folder, or one this command wrote before")
    output_folder(folder, what, must_be_empty=False)
    parents = missing_parents(folder)
    try:
        folder.mkdir(parents=True)
        created = True
    except FileExistsError:
        created = False
    except OSError as err:
        raise KgnetError(f"{name}: cannot create the folder ({err.strerror}); choose another folder") from None
    try:
        claim = RunClaim(folder, _lock(folder, name), created=created, parents=parents)
    except KgnetError:
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()
                remove_empty(parents)
        raise
    if _contents(folder) and not (folder / owner).is_file():  # someone filled it between the check and the lock
        claim.release()
        raise KgnetError(f"{name}: the folder is not empty (another command wrote into it); pick a new one")
    (folder / owner).write_text("written by kgnet; its other files may be replaced by the next call\n")
    return claim
