"""Helpers for the I/O tests: write inline fixture text, find the shared data folder."""
from __future__ import annotations

import gzip
import textwrap
from pathlib import Path
from typing import Optional

import pytest

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    """Write dedented `text` to tmp_path/name (gzip-compressed when the name ends in .gz)."""
    data = textwrap.dedent(text).lstrip("\n").encode(encoding)
    path = tmp_path / name
    if name.endswith(".gz"):
        with gzip.open(path, "wb") as handle:
            handle.write(data)
    else:
        path.write_bytes(data)
    return path


def shared_data() -> Optional[Path]:
    from llm4ms.data.shared import shared_data_dir

    return shared_data_dir(required=False)


def shared_file(relative: str) -> Path:
    root = shared_data()
    if root is None or not (root / relative).is_file():
        pytest.skip(f"shared data file {relative} not available (set LLM4MS_SHARED_DATA or put it at "
                    "../shared/data)")
    return root / relative
