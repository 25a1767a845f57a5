"""Writing files so a crash never leaves half of one behind: temp file in the same folder, then rename.

Every file kgnet writes goes through `atomic_path`, which is also the one place that turns
what the operating system refuses (a full disk, a quota, a read-only or unwritable folder)
into a `WriteError` (exit 2) naming the file and what to do, with the temporary file removed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator

from kgnet.errors import WriteError

#: What the OS refuses, by errno, and what the user can do about it.
_REFUSALS = {
    errno.ENOSPC: "no space left on the device; free some space or write to another disk",
    errno.EDQUOT: "the disk quota is exceeded; free some space or write to another disk",
    errno.EFBIG: "the file is too large for this file system; write to another disk",
    errno.EROFS: "the file system is read-only; write to another folder",
    errno.EACCES: "permission denied; make the folder writable or write to another one",
    errno.EPERM: "the operation is not permitted here; write to another folder",
    errno.EIO: "an input/output error on the device; check the disk, or write to another one",
}
#: torch.save reports a failed write without an errno; Rust libraries (safetensors) as "(os error N)".
_TORCH_WRITE_FAILED = ("file write failed", "unexpected pos")
_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def _refusal(err: BaseException) -> str | None:
    """What the user can do about `err`, when it is the OS refusing a write; None for anything else."""
    if isinstance(err, OSError) and err.errno in _REFUSALS:
        return _REFUSALS[err.errno]
    text = str(err)
    match = _OS_ERROR.search(text)
    if match and int(match.group(1)) in _REFUSALS:
        return _REFUSALS[int(match.group(1))]
    if isinstance(err, RuntimeError) and any(s in text for s in _TORCH_WRITE_FAILED):
        return "the write failed (is the disk full?); free some space or write to another disk"
    return None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success it replaces `path` in one rename.

    Raises:
        WriteError: The OS refused the write (full disk, quota, read-only, permission); the
            temporary file is removed and `path` is left as it was.
    """
    path = Path(path)
    tmp_path: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        # mkstemp makes it private, and a writer that re-creates the file (safetensors) may too
        tmp_path.chmod(0o666 & ~umask)
        os.replace(tmp_path, path)
    except Exception as err:
        remedy = _refusal(err)
        if remedy is None:
            raise
        raise WriteError(f"{path}: cannot write it: {remedy}") from None
    finally:
        if tmp_path is not None:
            with contextlib.suppress(OSError):
                tmp_path.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
