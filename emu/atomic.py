"""Atomic result files: a reader sees the old file or the whole new one, never a part.

Result files (``emu run --json``, scenario and sweep reports, PNG frames) are
written to a temporary file in the destination's directory, flushed and
``fsync``-ed, then moved over the destination with :func:`os.replace`, which
is atomic on POSIX when both names are on the same file system. A run killed
half-way through a write leaves at most a stray ``.NAME.*.tmp`` file, never a
truncated result.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from emu.errors import EmuError


def write_atomic(path: str | os.PathLike[str], data: str | bytes, *,
                 encoding: str = "utf-8") -> Path:
    """Replace ``path`` with ``data`` (text is encoded with ``encoding``) in one step.

    Missing parent directories are created. Errors raise :class:`EmuError`
    naming the file; the temporary file is removed then.
    """
    raw = data.encode(encoding) if isinstance(data, str) else data
    with open_atomic(path) as fh:
        fh.write(raw)
    return Path(path)


@contextlib.contextmanager
def open_atomic(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """A binary file that becomes ``path`` when the ``with`` block ends without error.

    For writers that want a file object (Pillow's ``Image.save``). On an
    exception (``KeyboardInterrupt`` included) the temporary file is deleted
    and ``path`` is left as it was.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                   dir=target.parent)
    except OSError as exc:
        raise EmuError(f"cannot write {target}: {exc.strerror or exc}") from exc
    done = False
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, target)
        done = True
    except OSError as exc:
        raise EmuError(f"cannot write {target}: {exc.strerror or exc}") from exc
    finally:
        if not done:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    _fsync_dir(target.parent)


def _read_umask() -> int:
    """The process umask (``mkstemp`` creates files 0600; results get the usual mode).

    Read once at import: ``os.umask`` can only be read by setting it, which is
    not safe while other threads create files.
    """
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable; a file system that cannot is left alone."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
