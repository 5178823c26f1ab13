"""How a damaged library folder is reported: one `Llm4msError` line naming the folder, what is wrong and how
to rebuild it (never a numpy / pyarrow / faiss traceback)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from llm4ms.errors import Llm4msError


def rebuild_hint(folder: str | Path, source: Any = None) -> str:
    """How to rebuild a damaged library (the `embed` command, with the recorded input file when known)."""
    path = source.get("path") if isinstance(source, dict) else None
    spectra = str(path) if isinstance(path, str) and path else "SPECTRA_FILE"
    return f"rebuild it with `llm4ms embed --spectra {spectra} --out {folder} --overwrite`"


def index_hint(folder: str | Path) -> str:
    return f"rebuild the index with `llm4ms index {folder}` (or rerun `llm4ms embed`)"


def one_line(text: Any, limit: int = 200) -> str:
    """`text` on one line, shortened to `limit` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[:limit - 3] + "..."


def damaged(folder: str | Path, what: str, hint: str) -> Llm4msError:
    """The one-line error for a damaged library: ``FOLDER: what is wrong; how to rebuild``."""
    return Llm4msError(f"{folder}: {one_line(what, 300)}; {hint}")


def reason(err: BaseException) -> str:
    """A library's exception as a short reason (faiss' C++ signature and source location dropped)."""
    text = " ".join(str(err).split())
    if " failed: " in text:  # faiss: "Error in <C++ signature> at <source>: Error: '<check>' failed: <why>"
        text = text.rsplit(" failed: ", 1)[1]
    elif text.startswith("Error in ") and " at " in text:
        text = text.split(": ", 1)[-1] if ": " in text else text
    text = one_line(text, 160)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
