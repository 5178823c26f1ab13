"""Find the project's shared public data folder (MassBank EI, PNNL, molecule lists) on any machine.

Two places, in this order, and nothing else:

1. ``$LLM4MS_SHARED_DATA`` when it is set (and not empty). It is an explicit choice, so a value that is not a
   folder is an error (``required=True``) or "no shared data" (``required=False``); it never falls through
   to another place.
2. ``../shared/data`` beside the repository clone (the clone's parent folder), when llm4ms runs from a clone.

Scripts and tests call these functions when they need the data, never at import time, so a machine without
the data can still import every module and collect every test (data tests then skip with a reason).

Result files record paths with `portable_path`: relative to the repository root, or ``shared:<relative>``
inside the shared data folder, so they hold no machine's absolute folders; `resolve_portable` reads them back.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from llm4ms.errors import ConfigError

ENV = "LLM4MS_SHARED_DATA"
SHARED_PREFIX = "shared:"
_REPO = Path(__file__).resolve().parents[2]


def repo_root() -> Optional[Path]:
    """The repository clone llm4ms runs from, or None for an installed (non-editable) package."""
    return _REPO if (_REPO / "pyproject.toml").is_file() and (_REPO / "llm4ms").is_dir() else None


def shared_data_dir(required: bool = True) -> Optional[Path]:
    """The shared data folder: $LLM4MS_SHARED_DATA, else ../shared/data beside the clone.

    Missing: `ConfigError` (one line saying what to set) when `required`, else None.
    """
    value = os.environ.get(ENV, "").strip()
    if value:
        path = Path(value).expanduser()
        if path.is_dir():
            return path
        if required:
            raise ConfigError(f"{ENV}={value}: no such folder (it should hold massbank_ei/, molecules/, "
                              "pnnl_gcms/ and fastei/)")
        return None
    root = repo_root()
    beside = root.parent / "shared" / "data" if root is not None else None
    if beside is not None and beside.is_dir():
        return beside
    if required:
        where = f" and there is no {beside}" if beside is not None else ""
        raise ConfigError(f"shared data folder not found: set {ENV} to the folder holding massbank_ei/, "
                          f"molecules/, pnnl_gcms/ and fastei/{where}")
    return None


def shared_path(*parts: str) -> Path:
    """A path inside the shared data folder, e.g. shared_path('massbank_ei', 'massbank_ei_nominal.msp')."""
    return shared_data_dir().joinpath(*parts)


def shared_file(*parts: str) -> Optional[Path]:
    """The shared data file at `parts` if the folder and the file exist, else None (for optional use)."""
    root = shared_data_dir(required=False)
    path = root.joinpath(*parts) if root is not None else None
    return path if path is not None and path.is_file() else None


def portable_path(path: str | os.PathLike) -> str:
    """`path` as recorded in result files: repo-relative, ``shared:<relative>``, else as given.

    >>> portable_path(repo_root() / 'examples' / 'unknown_A.csv')  # doctest: +SKIP
    'examples/unknown_A.csv'
    """
    given = Path(path)
    resolved = given.expanduser().resolve()
    shared = shared_data_dir(required=False)
    if shared is not None:
        try:
            return SHARED_PREFIX + resolved.relative_to(shared.resolve()).as_posix()
        except ValueError:
            pass
    root = repo_root()
    if root is not None:
        try:
            return resolved.relative_to(root).as_posix()
        except ValueError:
            pass
    return str(given)


def resolve_portable(text: str) -> Path:
    """Inverse of `portable_path`: ``shared:x/y`` -> shared_data_dir()/x/y; repo-relative -> under the repo."""
    if text.startswith(SHARED_PREFIX):
        return shared_path(*Path(text[len(SHARED_PREFIX):]).parts)
    path = Path(text)
    root = repo_root()
    if not path.is_absolute() and root is not None:
        return root / path
    return path
