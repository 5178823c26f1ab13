"""Small shared helpers: atomic file writes, JSON I/O, thread settings."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    No half-written file is ever visible under the final name. With `durable` (the default) the file's data
    is flushed to disk (fsync) before the rename and the folder entry after it, so a power cut or kill -9
    leaves either the old or the new file, never an empty or partial one under the final name.
    Temporaries are named ``.NAME.XXXX.tmp`` (see `stale_temporaries`).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=TMP_SUFFIX, dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give outputs the usual permissions
    try:
        yield tmp_path
        if durable:
            fsync_file(tmp_path)
        os.replace(tmp_path, final)
        if durable:
            fsync_dir(final.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


TMP_SUFFIX = ".tmp"


def fsync_file(path: str | os.PathLike) -> None:
    """Flush a file's data to disk (whoever wrote it, through whatever handle or memory map)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | os.PathLike) -> None:
    """Flush a folder's entries (renames, new files) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # pragma: no cover - Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Temporaries `atomic_path` left in `folder` when its process was killed (``.NAME.XXXX.tmp``)."""
    root = Path(folder)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.name.startswith(".") and p.name.endswith(TMP_SUFFIX)
                  and p.is_file())


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any):
    """Open a temporary file for writing that replaces `path` atomically on success."""
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as handle:
            yield handle


def package_versions(packages: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of `packages` (llm4ms itself from its module when not pip-installed)."""
    import importlib.metadata as md

    out = {}
    for package in packages:
        try:
            out[package] = md.version(package)
        except md.PackageNotFoundError:
            if package == "llm4ms":
                from llm4ms import __version__

                out[package] = __version__
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write JSON atomically with stable formatting."""
    with atomic_open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=False, default=_json_default)
        handle.write("\n")


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _json_default(obj: Any) -> Any:
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
