"""Recipe front-ends: JSON config + flag overrides, clear one-line refusals, a tiny end-to-end run."""
from __future__ import annotations

import importlib
import json
import shutil
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


def _mntp_types():
    from transformers import TrainingArguments

    return (arguments.ModelArguments, arguments.DataArguments, TrainingArguments, arguments.MNTPArguments)


def _contrastive_types():
    from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments

    return (arguments.ModelArguments, arguments.DataArguments, SentenceTransformerTrainingArguments,
            arguments.ContrastiveArguments)


def test_json_config_with_flag_override(data):
    common = _recipe("_common")
    cfg = _config(data, model_name_or_path="tiny:32x1", train_file=str(data / "train.jsonl"),
                  output_dir=str(data / "out"), max_steps=7, learning_rate=1e-3, _comment="ignored")
    model, dat, train, stage = common.parse_config(
        [str(cfg), "--max_steps", "3", "--mask_probability", "0.3"], _mntp_types())
    assert (train.max_steps, train.learning_rate, stage.mask_probability) == (3, 1e-3, 0.3)
    assert model.model_name_or_path == "tiny:32x1" and dat.train_file.endswith("train.jsonl")


@pytest.mark.parametrize("values, message", [
    ({"train_file": "nope/missing.jsonl"}, "train_file: nope/missing.jsonl does not exist"),
    ({"typo_key": 1}, "unknown keys typo_key"),
    ({"load_in_4bit": True}, "load_in_4bit needs"),
    ({"attention_dropout": 1.5}, "attention_dropout must be in [0, 1)"),
    ({"validation_queries": "__train__"}, "give both validation_queries and validation_library"),
    ({"eval_strategy": "sometimes"}, "sometimes"),
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
        common.parse_config([str(cfg)], _contrastive_types())
    assert message in str(err.value) and "\n" not in str(err.value)


def test_recipe_exits_2_with_one_line(data, capsys):
    common, mntp = _recipe("_common"), _recipe("mntp")
    cfg = _config(data, model_name_or_path="tiny:32x1", train_file=str(data / "missing.jsonl"),
                  output_dir=str(data / "out"))
    assert common.run(mntp.main, [str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert "missing.jsonl does not exist" in err and len(err.splitlines()) == 1


def _triples(spectra, path):
    rows = []
    n = len(spectra) // 2
    for c in range(n):
        rows.append({"anchor": spectrum_to_record(spectra[2 * c]), "positive": spectrum_to_record(spectra[2 * c + 1]),
                     "negatives": [spectrum_to_record(spectra[2 * ((c + 1) % n) + 1])]})
    write_jsonl(rows, path)


def test_three_stages_on_the_trainers_tiny_lora(tmp_path):
    """MNTP (transformers.Trainer) -> SimCSE -> supervised (SentenceTransformerTrainer), LoRA stacked per stage;
    resume from a LoRA checkpoint; the supervised loss falls and validation R@1 rises."""
    from llm4ms.model import SpectrumEncoder

    common, mntp, simcse, supervised = (_recipe(n) for n in ("_common", "mntp", "simcse", "supervised"))
    spectra = synthetic_spectra(16, 2, seed=7)
    write_jsonl(map(spectrum_to_record, spectra), tmp_path / "train.jsonl")
    write_jsonl(map(spectrum_to_record, spectra[0::2]), tmp_path / "q.jsonl")
    write_jsonl(map(spectrum_to_record, spectra[1::2]), tmp_path / "lib.jsonl")
    _triples(spectra, tmp_path / "triples.jsonl")
    shared = dict(validation_queries=str(tmp_path / "q.jsonl"), validation_library=str(tmp_path / "lib.jsonl"),
                  per_device_train_batch_size=8, logging_steps=1, lora_r=4, lora_alpha=8, seed=0, max_length=128)

    def stage(recipe, name, **values):
        config = tmp_path / f"{name}.json"
        config.write_text(json.dumps({**shared, **values}))
        assert common.run(recipe.main, [str(config)]) == 0
        return json.loads((tmp_path / name / "results.json").read_text())

    first = stage(mntp, "mntp", model_name_or_path="tiny:32x1", train_file=str(tmp_path / "train.jsonl"),
                  output_dir=str(tmp_path / "mntp"), max_steps=4, save_steps=2, learning_rate=1e-3)
    assert first["stage"] == "mntp" and first["steps"] == 4 and set(first["validation_after"]) == {"R@1", "R@10"}
    second = stage(simcse, "simcse", model_name_or_path=str(tmp_path / "mntp" / "final"),
                   train_file=str(tmp_path / "train.jsonl"), output_dir=str(tmp_path / "simcse"), max_steps=3,
                   save_steps=3, learning_rate=1e-3, attention_dropout=0.2)
    assert second["steps"] == 3 and second["lora"]["r"] == 4
    sup = dict(model_name_or_path=str(tmp_path / "simcse" / "final"), train_file=str(tmp_path / "triples.jsonl"),
               output_dir=str(tmp_path / "sup"), save_steps=10, learning_rate=3e-3, batch_sampler="no_duplicates")
    stage(supervised, "sup", max_steps=10, **sup)
    shutil.rmtree(tmp_path / "sup" / "final")
    third = stage(supervised, "sup", max_steps=24, **sup)  # resumes from the LoRA checkpoint at step 10
    assert third["resumed_from"].endswith("checkpoint-10") and third["steps"] == 24
    losses = [p["loss"] for p in third["loss_history"]]
    assert losses[0] > 1.2 * min(losses[-3:])  # continues the first run's curve, then falls
    assert third["validation_after"]["R@1"] > first["validation_before"]["R@1"] or \
        third["validation_after"]["R@1"] == 100.0
    model = SpectrumEncoder.from_pretrained(tmp_path / "sup" / "final")
    assert [s["stage"] for s in model.config["training"]["stages"]] == ["mntp", "simcse", "supervised"]
    assert model.config["merged_adapters"] == 3 and model.body.config.is_causal is False
    assert common.run(supervised.main, [str(tmp_path / "sup.json")]) == 0  # final exists: skipped


def test_peak_model_supervised_trains_resumes_and_saves(tmp_path):
    spectra = synthetic_spectra(16, 2, seed=7)
    _triples(spectra, tmp_path / "triples.jsonl")
    write_jsonl(map(spectrum_to_record, spectra[0::2]), tmp_path / "q.jsonl")
    write_jsonl(map(spectrum_to_record, spectra[1::2]), tmp_path / "lib.jsonl")
    config = {"model_name_or_path": "peak:32x1", "max_mz": 300, "intermediate_size": 64, "use_lora": False,
              "train_file": str(tmp_path / "triples.jsonl"), "validation_queries": str(tmp_path / "q.jsonl"),
              "validation_library": str(tmp_path / "lib.jsonl"), "output_dir": str(tmp_path / "run"),
              "max_steps": 12, "per_device_train_batch_size": 8, "learning_rate": 0.01, "logging_steps": 1,
              "save_steps": 6, "eval_strategy": "steps", "eval_steps": 6,
              "batch_sampler": "no_duplicates", "augment_copies": 1, "seed": 0, "_comment": "notes are ignored"}
    (tmp_path / "cfg.json").write_text(json.dumps(config))
    recipe = _recipe("supervised")
    assert recipe.main([str(tmp_path / "cfg.json"), "--max_steps", "6"]) == 0  # flags override the JSON
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["steps"] == 6 and results["rows"] == 32  # 16 anchors + 16 augmented copies
    shutil.rmtree(tmp_path / "run" / "final")
    assert recipe.main([str(tmp_path / "cfg.json")]) == 0  # resumes from the step-6 checkpoint
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["steps"] == 12 and results["resumed_from"].endswith("checkpoint-6")
    losses = [p["loss"] for p in results["loss_history"]]
    assert losses and min(losses[-3:]) < max(losses[:3])
    assert results["validation_after"]["R@1"] >= 50.0
    from llm4ms.model import SpectrumEncoder

    model = SpectrumEncoder.from_pretrained(tmp_path / "run" / "final")
    assert model.pooling == "intensity" and model.config["training"]["stages"][-1]["stage"] == "supervised"


def test_supervised_refuses_format1_folders(tmp_path):
    recipe = _recipe("supervised")
    old = Path(__file__).parent / "data" / "format1_model"
    _triples(synthetic_spectra(2, 2), tmp_path / "t.jsonl")
    with pytest.raises(ConfigError, match="llm4ms convert"):
        recipe.main(["--model_name_or_path", str(old), "--train_file", str(tmp_path / "t.jsonl"),
                     "--output_dir", str(tmp_path / "o")])


def test_shipped_configs_parse_and_accelerate_yaml_is_valid(tmp_path):
    import yaml

    common = _recipe("_common")
    for path in sorted((RECIPES / "configs").glob("*.json")):
        config = json.loads(path.read_text())
        assert {"model_name_or_path", "train_file", "output_dir", "max_steps"} <= set(config), path.name
        _triples(synthetic_spectra(2, 2), tmp_path / "x.jsonl")
        overrides = [f"--{key}" for key in ("train_file", "validation_queries", "validation_library")
                     if key in config]
        argv = [str(path)] + sum(([flag, str(tmp_path / "x.jsonl")] for flag in overrides), [])
        argv += ["--load_in_4bit", "false", "--bf16", "false", "--output_dir", str(tmp_path / "o")]
        types = _mntp_types() if path.name.startswith(("mntp", "default_smollm2_mntp")) else _contrastive_types()
        common.parse_config(argv, types)  # every key is known to the stage's dataclasses
    for path in sorted((RECIPES.parent / "accelerate_configs").glob("*.yaml")):
        config = yaml.safe_load(path.read_text())
        assert config["compute_environment"] == "LOCAL_MACHINE" and "distributed_type" in config, path.name


def test_accelerate_launch_cpu_config_runs_a_recipe_with_the_cached_loss(tmp_path):
    """`accelerate launch --config_file accelerate_configs/cpu.yaml recipes/supervised.py CONFIG`, as documented,
    with CachedMultipleNegativesRankingLoss (mini-batches of 4)."""
    import os
    import subprocess

    spectra = synthetic_spectra(8, 2, seed=3)
    _triples(spectra, tmp_path / "triples.jsonl")
    config = {"model_name_or_path": "peak:32x1", "max_mz": 300, "intermediate_size": 64, "use_lora": False,
              "train_file": str(tmp_path / "triples.jsonl"), "output_dir": str(tmp_path / "run"), "max_steps": 3,
              "per_device_train_batch_size": 8, "learning_rate": 0.01, "logging_steps": 1, "save_steps": 3,
              "cached_loss_mini_batch": 4, "seed": 0}
    (tmp_path / "cfg.json").write_text(json.dumps(config))
    root = RECIPES.parent
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                           str(root / "accelerate_configs" / "cpu.yaml"), str(RECIPES / "supervised.py"),
                           str(tmp_path / "cfg.json")], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["steps"] == 3 and results["final_loss"] > 0
