"""Recipe front-ends: JSON config + flag overrides, clear one-line refusals, a tiny end-to-end run."""
from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

from _training_helpers import synthetic_spectra
from llm4ms.errors import ConfigError
from llm4ms.training import arguments
from llm4ms.training.data import spectrum_to_record, write_jsonl

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
sys.path.insert(0, str(RECIPES))


def _recipe(name):
    return importlib.import_module(name)


@pytest.fixture()
def data(tmp_path):
    spectra = synthetic_spectra(6, 2)
    write_jsonl(map(spectrum_to_record, spectra), tmp_path / "train.jsonl")
    write_jsonl(map(spectrum_to_record, spectra[0::2]), tmp_path / "q.jsonl")
    write_jsonl(map(spectrum_to_record, spectra[1::2]), tmp_path / "lib.jsonl")
    return tmp_path


def _config(tmp_path, **values) -> Path:
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(values))
    return path


def test_json_config_with_flag_override(data):
    common = _recipe("_common")
    cfg = _config(data, model_name_or_path="tiny:32x1", train_file=str(data / "train.jsonl"),
                  output_dir=str(data / "out"), max_steps=7, learning_rate=1e-3, _comment="ignored")
    model, dat, train, stage = common.parse_config(
        [str(cfg), "--max_steps", "3", "--mask_probability", "0.3"],
        (arguments.ModelArguments, arguments.DataArguments, arguments.TrainingArguments, arguments.MNTPArguments))
    assert (train.max_steps, train.learning_rate, stage.mask_probability) == (3, 1e-3, 0.3)
    assert model.model_name_or_path == "tiny:32x1" and dat.train_file.endswith("train.jsonl")


@pytest.mark.parametrize("values, message", [
    ({"train_file": "nope/missing.jsonl"}, "train_file: nope/missing.jsonl does not exist"),
    ({"typo_key": 1}, "unknown keys typo_key"),
    ({"load_in_4bit": True}, "load_in_4bit needs"),
    ({"attention_dropout": 0.0}, "attention_dropout in (0, 1)"),
    ({"validation_queries": "__train__"}, "give both validation_queries and validation_library"),
])
def test_config_refusals_are_one_clear_line(data, values, message):
    common = _recipe("_common")
    values = {k: (str(data / "train.jsonl") if v == "__train__" else v) for k, v in values.items()}
    if "load_in_4bit" in values:
        import torch

        if torch.cuda.is_available():
            pytest.skip("a CUDA machine may accept 4-bit")
    cfg = _config(data, **{"model_name_or_path": "tiny:32x1", "train_file": str(data / "train.jsonl"),
                           "output_dir": str(data / "out"), **values})
    with pytest.raises(ConfigError) as err:
        common.parse_config([str(cfg)], (arguments.ModelArguments, arguments.DataArguments,
                                         arguments.TrainingArguments, arguments.SimCSEArguments))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_bf16_refused_without_support(monkeypatch):
    monkeypatch.setattr(arguments, "cuda_bf16_or_cpu_bf16", lambda: False)
    with pytest.raises(ConfigError, match="bf16 requested"):
        arguments.TrainingArguments(output_dir="x", bf16=True)


def test_recipe_exits_2_with_one_line(data, capsys):
    common, mntp = _recipe("_common"), _recipe("mntp")
    cfg = _config(data, model_name_or_path="tiny:32x1", train_file=str(data / "missing.jsonl"),
                  output_dir=str(data / "out"))
    assert common.run(mntp.main, [str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert "missing.jsonl does not exist" in err and len(err.splitlines()) == 1


def test_mntp_recipe_end_to_end_tiny(data):
    common, mntp = _recipe("_common"), _recipe("mntp")
    cfg = _config(data, model_name_or_path="tiny:32x1", train_file=str(data / "train.jsonl"),
                  validation_queries=str(data / "q.jsonl"), validation_library=str(data / "lib.jsonl"),
                  output_dir=str(data / "out"), max_steps=5, per_device_train_batch_size=4, lora_r=4,
                  lora_alpha=8, learning_rate=1e-3, save_steps=2, logging_steps=1)
    assert common.run(mntp.main, [str(cfg), "--max_steps", "2"]) == 0
    results = json.loads((data / "out" / "train_results.json").read_text())
    assert results["stage"] == "mntp" and results["steps"] == 2
    assert set(results["validation"]["after"]) == {"recall@1", "recall@10"}
    assert (data / "out" / "final" / "llm4ms_config.json").is_file()


def test_shipped_configs_parse_and_accelerate_yaml_is_valid():
    import yaml

    for path in sorted((RECIPES / "configs").glob("*.json")):
        config = json.loads(path.read_text())
        assert {"model_name_or_path", "train_file", "output_dir", "max_steps"} <= set(config), path.name
    for path in sorted((RECIPES.parent / "accelerate_configs").glob("*.yaml")):
        config = yaml.safe_load(path.read_text())
        assert config["compute_environment"] == "LOCAL_MACHINE" and "distributed_type" in config, path.name
