"""recipes/contrastive.py: a format-2 model trained on sentence-transformers' Trainer, offline and tiny."""
from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

from _training_helpers import synthetic_spectra
from llm4ms.training.data import spectrum_to_record, write_jsonl

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
sys.path.insert(0, str(RECIPES))


def test_contrastive_recipe_trains_resumes_and_saves(tmp_path):
    spectra = synthetic_spectra(16, 2, seed=7)
    rows = []
    for c in range(16):
        anchor, positive = spectra[2 * c], spectra[2 * c + 1]
        negative = spectra[2 * ((c + 1) % 16) + 1]
        rows.append({"anchor": spectrum_to_record(anchor), "positive": spectrum_to_record(positive),
                     "negatives": [spectrum_to_record(negative)]})
    write_jsonl(rows, tmp_path / "triples.jsonl")
    write_jsonl(map(spectrum_to_record, spectra[0::2]), tmp_path / "q.jsonl")
    write_jsonl(map(spectrum_to_record, spectra[1::2]), tmp_path / "lib.jsonl")
    config = {"model_name_or_path": "peak:32x1", "max_mz": 300, "intermediate_size": 64,
              "train_file": str(tmp_path / "triples.jsonl"), "validation_queries": str(tmp_path / "q.jsonl"),
              "validation_library": str(tmp_path / "lib.jsonl"), "output_dir": str(tmp_path / "run"),
              "max_steps": 12, "per_device_train_batch_size": 8, "learning_rate": 0.01, "logging_steps": 1,
              "save_steps": 6, "eval_strategy": "steps", "eval_steps": 6, "report_to": "none",
              "batch_sampler": "no_duplicates", "augment_copies": 1, "seed": 0, "_comment": "notes are ignored"}
    (tmp_path / "cfg.json").write_text(json.dumps(config))
    recipe = importlib.import_module("contrastive")
    assert recipe.main([str(tmp_path / "cfg.json"), "--max_steps", "6"]) == 0  # flags override the JSON
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["steps"] == 6 and results["rows"] == 32  # 16 anchors + 16 augmented copies
    import shutil

    shutil.rmtree(tmp_path / "run" / "final")
    assert recipe.main([str(tmp_path / "cfg.json")]) == 0  # resumes from the step-6 checkpoint
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["steps"] == 12 and results["resumed_from"].endswith("checkpoint-6")
    losses = [p["loss"] for p in results["loss_history"]]
    assert losses and min(losses[-3:]) < max(losses[:3])
    assert results["validation_after"]["R@1"] >= 50.0
    from llm4ms.model import SpectrumEncoder

    model = SpectrumEncoder.from_pretrained(tmp_path / "run" / "final")
    assert model.config["training"]["stages"][-1]["stage"] == "contrastive"
    assert recipe.main([str(tmp_path / "cfg.json")]) == 0  # final exists: skipped, nothing retrained


def test_contrastive_recipe_refuses_unknown_keys_and_models(tmp_path):
    import pytest

    from llm4ms.errors import ConfigError

    recipe = importlib.import_module("contrastive")
    (tmp_path / "bad.json").write_text(json.dumps({"model_name_or_path": "peak:32x1", "train_file": "x",
                                                   "output_dir": str(tmp_path / "o"), "no_such_key": 1}))
    with pytest.raises(ConfigError, match="no_such_key"):
        recipe.main([str(tmp_path / "bad.json")])
    with pytest.raises(ConfigError, match="format-2"):
        recipe.main(["--model_name_or_path", str(tmp_path), "--train_file", "x", "--output_dir", str(tmp_path / "o")])
