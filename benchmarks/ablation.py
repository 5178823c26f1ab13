"""Ablation on the validation split: what each choice of the default model is worth.

Each row trains a variant with the recipes (same data and settings as `recipes/configs/peak_supervised.json`,
with intensity-weighted pooling as the reference, unless the row says otherwise; resumable: a row whose ``final/``
exists is not retrained) and scores it on the in-silico validation benchmark (679 measured queries vs 10k
predicted spectra): the embedding alone, and one fixed ranking (fusion 0.15 with sqrt cosine, depth 1,000, mass
prior 0.5 / 1.5 Da / 0.5 %) on top of it, so rows compare embeddings under the same ranking.

    python benchmarks/ablation.py                       # every row; runs/ablation/<row>/...
    python benchmarks/ablation.py --rows peak_default,peak_mean_pooling --max-steps 200

Prints a markdown table and writes benchmarks/results/ablation_validation.json and .md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "recipes"))

RESULTS = ROOT / "benchmarks" / "results" / "ablation_validation"
DATA = "work_data/training_default"
SUPERVISED = "recipes/configs/peak_supervised.json"
MNTP_STEPS = 300

#: name -> (what it varies, [(recipe, overrides), ...]); the last stage's final/ is the row's model.
ROWS: dict[str, tuple[str, list[tuple[str, dict]]]] = {
    "peak_untrained": ("peak tokens 128x2, intensity pooling, no training (random init)", []),
    "peak_default": ("the default recipe: peak tokens 128x2, intensity pooling, supervised only",
                     [("supervised", {})]),
    "peak_mean_pooling": ("pooling: plain mean instead of intensity-weighted", [("supervised", {"pooling": "mean"})]),
    "peak_mntp_supervised": ("stages: MNTP on the train spectra (peak tokens), then supervised",
                             [("mntp", {}), ("supervised", {})]),
    "peak_simcse_supervised": ("stages: SimCSE (dropout 0.1), then supervised",
                               [("simcse", {}), ("supervised", {})]),
    "peak_half_data": ("training data: the first half of the triples", [("supervised", {"max_train_samples": 7513})]),
    "peak_64x1": ("model size: hidden 64, 1 layer, mean pooling (compare with peak_mean_pooling, 128x2)",
                  [("supervised", {"model_name_or_path": "peak:64x1", "pooling": "mean"})]),
    "peak_256x4": ("model size: hidden 256, 4 layers, mean pooling (compare with peak_mean_pooling, 128x2)",
                   [("supervised", {"model_name_or_path": "peak:256x4", "intermediate_size": 512, "pooling": "mean"})]),
    "bpe_tiny_supervised": ("tokens: byte-level BPE over 'mz:bin' text (llm4ms-v2), tiny Llama 128x2, mean pooling",
                            [("supervised", {"model_name_or_path": "tiny:128x2", "textualizer": "llm4ms-v2",
                                             "max_length": 256, "per_device_train_batch_size": 64})]),
    "llm4ms_template_tiny_supervised": ("tokens: the published LLM4MS template, BPE, tiny Llama 128x2",
                                        [("supervised", {"model_name_or_path": "tiny:128x2", "textualizer": "llm4ms",
                                                         "max_length": 384, "per_device_train_batch_size": 64})]),
}

STAGE_DEFAULTS = {
    "mntp": {"train_file": f"{DATA}/mntp.jsonl", "max_steps": MNTP_STEPS, "per_device_train_batch_size": 128,
             "learning_rate": 1e-3, "warmup_steps": 20, "mask_probability": 0.2, "logging_steps": 10,
             "save_steps": 100, "use_lora": False, "report_to": "none", "seed": 42},
    "simcse": {"train_file": f"{DATA}/mntp.jsonl", "max_steps": 100, "per_device_train_batch_size": 128,
               "learning_rate": 3e-4, "warmup_steps": 10, "attention_dropout": 0.1, "logging_steps": 10,
               "save_steps": 100, "use_lora": False, "report_to": "none", "seed": 42},
}


def stage_config(row: str, index: int, recipe: str, overrides: dict, previous: str | None, work: Path,
                 max_steps: int) -> dict:
    if recipe == "supervised":
        config = {k: v for k, v in json.loads((ROOT / SUPERVISED).read_text()).items() if not k.startswith("_")}
        config["max_steps"] = max_steps
        config["pooling"] = "intensity"  # the reference of the table: the previous default (rows change it)
    else:
        config = dict(STAGE_DEFAULTS[recipe])
        config["model_name_or_path"] = "peak:128x2"
        config["validation_queries"] = f"{DATA}/validation_insilico_queries.jsonl"
        config["validation_library"] = f"{DATA}/validation_insilico_library.jsonl"
    if previous is not None:
        config["model_name_or_path"] = previous
    config.update(overrides)
    if str(config["model_name_or_path"]).startswith("tiny:"):
        config["use_lora"] = False  # a from-scratch model trains every weight
    config["output_dir"] = str(work / row / f"{index}_{recipe}")
    return config


def train_row(row: str, work: Path, max_steps: int) -> tuple[str, list[str]]:
    """Run the row's stages (skipping finished ones); returns (model folder, commands)."""
    import importlib

    from llm4ms.data.shared import portable_path
    from llm4ms.training.models import build_peak_base

    stages = ROWS[row][1]
    if not stages:
        from llm4ms.training.arguments import ModelArguments

        args = ModelArguments(model_name_or_path="peak:128x2", intermediate_size=256, top_n=40)
        return str(build_peak_base(args, 128, 2, work / row)), ["(random init: llm4ms.model.peak_model, seed 0)"]
    previous, commands = None, []
    for index, (recipe, overrides) in enumerate(stages):
        config = stage_config(row, index, recipe, overrides, previous, work, max_steps)
        path = work / row / f"{index}_{recipe}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config, indent=2) + "\n")
        commands.append(f"python recipes/{recipe}.py {portable_path(path)}")
        module = importlib.import_module(recipe)
        if module.main([str(path)]) != 0:
            raise SystemExit(f"{row}: {recipe} failed")
        previous = str(Path(config["output_dir"]) / "final")
    return previous, commands


def score_row(model: str) -> dict:
    from llm4ms.data.shared import repo_root
    from llm4ms.evaluate.loading import load_spectra
    from llm4ms.evaluate.runner import evaluate
    from llm4ms.ranking import MassPrior, Ranking

    bench = (repo_root() or ROOT) / "work_data" / "benchmark" / "insilico_validation"
    queries, library = load_spectra(bench / "queries.msp"), load_spectra(bench / "library_10k.msp")
    # one fixed ranking for every row (the one fit for the intensity-pooling model at the previous stop)
    default = Ranking(fusion=0.15, classic="cosine_sqrt", depth=1000,
                      prior=MassPrior(weight=0.5, margin=1.5, min_relative=0.005))
    result = evaluate(queries, library, ["llm4ms_embedding", "llm4ms"], mass_tolerance=None,
                      method_options={"llm4ms_embedding": {"model": model},
                                      "llm4ms": {"model": model, "ranking": default}},
                      name="ablation", prior=None)
    out = {}
    for method, key, column in (("llm4ms_embedding", "embedding", "recall"),
                                ("llm4ms", "default_ranking", "recall_with_prior")):
        recall = result["methods"][method][column]["inchikey14"]
        out[key] = {"R@1": round(100 * recall["1"], 1), "R@10": round(100 * recall["10"], 1)}
    return out


def markdown(report: dict) -> str:
    lines = [f"Validation: {report['benchmark']}. Embedding = the model alone; ranked = one fixed ranking for every "
             "row (fusion 0.15 with sqrt cosine, depth 1000, mass prior 0.5 / 1.5 Da / 0.5 %) on top of its embedding.",
             "", "| row | what varies | embedding R@1 / R@10 | ranked R@1 / R@10 | train minutes | commands |",
             "|---|---|---|---|---|---|"]
    for name, row in report["rows"].items():
        e, r = row["scores"]["embedding"], row["scores"]["default_ranking"]

        def pair(scores: dict) -> str:
            return "-" if scores.get("R@1") is None else f"{scores['R@1']} / {scores['R@10']}"

        minutes = "-" if row.get("train_minutes") is None else row["train_minutes"]
        lines.append(f"| {name} | {row['what']} | {pair(e)} | {pair(r)} | {minutes} | "
                     f"{'; '.join(f'`{c}`' for c in row['commands'])} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default=",".join(ROWS), help="comma-separated rows (default: all)")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "ablation")
    parser.add_argument("--max-steps", type=int, default=200, help="supervised steps (early stopping may stop sooner)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    import torch

    from llm4ms.data.shared import portable_path
    from llm4ms.utils import atomic_open, write_json

    torch.set_num_threads(args.threads)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        print(f"ablation.py: error: unknown rows {', '.join(unknown)}; known: {', '.join(ROWS)}", file=sys.stderr)
        return 2
    report = json.loads(RESULTS.with_suffix(".json").read_text()) if RESULTS.with_suffix(".json").is_file() else {}
    report.setdefault("rows", {})
    report["benchmark"] = "679 measured queries vs 10k predicted spectra (work_data/benchmark/insilico_validation)"
    for row in rows:
        start = time.time()
        model, commands = train_row(row, args.work, args.max_steps)
        minutes = round((time.time() - start) / 60, 1)
        scores = score_row(model)
        previous = report["rows"].get(row, {})
        report["rows"][row] = {"what": ROWS[row][0], "model": portable_path(model), "commands": commands,
                               "scores": scores,
                               "train_minutes": previous.get("train_minutes") if minutes < 0.2 else minutes}
        print(f"{row}: {scores}", flush=True)
        write_json(RESULTS.with_suffix(".json"), report)
    table = markdown(report)
    with atomic_open(RESULTS.with_suffix(".md"), "w", encoding="utf-8") as handle:
        handle.write(table + "\nCommand: `python benchmarks/ablation.py`\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
