"""Shared test setup: never touch the network or the Hub; find the shared data when it is present."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """The read-only shared data folder ($LLM4MS_SHARED_DATA, else ../shared/data beside the clone), or None."""
    from llm4ms.data.shared import shared_data_dir as find

    return find(required=False)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("shared data folder not available (set LLM4MS_SHARED_DATA or put it at ../shared/data)")
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Each test session gets its own llm4ms cache, so the default library is never read from ~/.cache."""
    monkeypatch.setenv("LLM4MS_CACHE", str(tmp_path_factory.getbasetemp() / "llm4ms_cache"))
