"""Find the project's shared public data folder (MassBank EI, PNNL, molecule lists) on any machine.

Order: $LLM4MS_SHARED_DATA, then ``../shared/data`` beside the repository clone, then ``/work/shared/data``.
Scripts use this instead of a hard-coded path so a fresh clone elsewhere runs them unchanged.
"""
from __future__ import annotations

import os
from pathlib import Path

from llm4ms.errors import ConfigError

_REPO = Path(__file__).resolve().parents[2]


def shared_data_dir(required: bool = True) -> Path | None:
    candidates = [os.environ.get("LLM4MS_SHARED_DATA"), _REPO.parent / "shared" / "data", "/work/shared/data"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    if required:
        raise ConfigError("shared data folder not found: set LLM4MS_SHARED_DATA to the folder holding "
                          "massbank_ei/, molecules/, pnnl_gcms/ and fastei/")
    return None


def shared_path(*parts: str) -> Path:
    """A path inside the shared data folder, e.g. shared_path('massbank_ei', 'massbank_ei_nominal.msp')."""
    return shared_data_dir().joinpath(*parts)
