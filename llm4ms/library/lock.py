"""One writer per library folder: the writer lock (``.llm4ms.lock``) and clearing what a killed writer left.

The lock is an fcntl lock the OS drops when its process dies, re-entrant within one thread; a second process
(or thread) asking for it gets `LibraryBusy` at once. Readers never take it.
"""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
from pathlib import Path
from typing import Any, Iterator, Optional

from llm4ms.errors import Llm4msError
from llm4ms.utils import stale_temporaries

log = logging.getLogger(__name__)

LOCK_NAME = ".llm4ms.lock"

_HELD: dict[tuple[str, int], list[Any]] = {}
_HELD_GUARD = threading.Lock()


class LibraryBusy(Llm4msError):
    """Another process holds the writer lock of a library folder."""


@contextlib.contextmanager
def writer_lock(folder: str | Path) -> Iterator[None]:
    """Hold the writer lock of a library folder (``.llm4ms.lock``, an fcntl lock the OS drops if we die).

    Re-entrant within one thread; another process (or thread) asking for it while held gets `LibraryBusy`
    at once. Where locks are unsupported (no fcntl, a file system refusing locks, a read-only folder) the
    block runs unlocked.
    """
    folder = _library_folder(folder)
    key = (str(folder.resolve()), threading.get_ident())
    with _HELD_GUARD:
        held = _HELD.get(key)
        if held is not None:
            held[1] += 1
        else:
            fd = _acquire(folder)
            held = _HELD[key] = [fd, 1]
    try:
        yield
    finally:
        with _HELD_GUARD:
            held[1] -= 1
            if held[1] == 0:
                del _HELD[key]
                if held[0] is not None:
                    os.close(held[0])  # closing the descriptor releases the lock


def _library_folder(folder: str | Path) -> Path:
    """`folder`, created when missing; one line when it is a file or cannot be created."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise Llm4msError(f"{folder}: is a file, not a library folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise Llm4msError(f"{folder}: cannot create the library folder ({err.strerror or err})") from None
    return folder


def _acquire(folder: Path) -> Optional[int]:
    """The locked descriptor of the folder's lock file; None where locking is not possible."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks here
        return None
    try:
        fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        if err.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
            return None  # read-only folder: nothing will be written here anyway
        raise
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise _busy(folder, fd) from None
        os.close(fd)  # ENOLCK and friends: a file system without locks
        log.warning("%s: cannot lock the library folder (%s); make sure only one process writes it", folder, err)
        return None
    _sign(fd)
    return fd


def _busy(folder: Path, fd: int) -> LibraryBusy:
    """The error for a folder another process writes, naming that process (closes `fd`)."""
    try:
        owner = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:  # pragma: no cover
        owner = ""
    os.close(fd)
    who = f" ({owner})" if owner else ""
    return LibraryBusy(f"{folder}: another llm4ms process{who} is writing this library folder; wait for it "
                       "to finish (then rerun to resume) or use another --out folder")


def _sign(fd: int) -> None:
    """Write who holds the lock into the lock file, for the message a refused writer gets."""
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {os.uname().nodename if hasattr(os, 'uname') else '?'}".encode(), 0)
    except OSError:  # pragma: no cover
        pass


def remove_stale_temporaries(folder: Path) -> int:
    """Delete temporaries a killed writer left (``.NAME.XXXX.tmp``); call only while holding the lock."""
    removed = 0
    for sub in (folder, folder / "shards"):
        for path in stale_temporaries(sub):
            with contextlib.suppress(OSError):
                path.unlink()
                removed += 1
    if removed:
        log.info("%s: removed %d temporary file(s) left by an interrupted run", folder, removed)
    return removed
