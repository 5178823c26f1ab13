"""Recorded run: the three recipes (MNTP -> SimCSE -> supervised) on the MassBank EI train split, small CPU model.

Writes loss curves and validation Recall@1/@10 (validation-split replicate search) before and after each
stage to benchmarks/results/training_run.json and prints a markdown table. Build the sets first:

    PYTHONPATH=. python data_prep/build_training_sets.py work_data/training
    PYTHONPATH=. python benchmarks/training_run.py --max_steps 20            # short check
    PYTHONPATH=. python benchmarks/training_run.py --max_steps 300 --model tiny:128x2   # full (< 60 min CPU)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESULTS = Path(__file__).resolve().parent / "results" / "training_run.json"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("work_data/training"))
    parser.add_argument("--work", type=Path, default=Path("runs/benchmark_training"))
    parser.add_argument("--model", default="tiny:128x2", help="tiny:<hidden>x<layers>, smollm2[:layers] or a folder")
    parser.add_argument("--max_steps", type=int, default=300, help="steps per stage")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--max_validation_queries", type=int, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes"))
    import mntp
    import simcse
    import supervised
    from llm4ms.training.data import SET_FILES

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    data = {"validation_queries": str(args.data / SET_FILES["validation_queries"]),
            "validation_library": str(args.data / SET_FILES["validation_library"])}
    if args.max_validation_queries:
        data["max_validation_queries"] = args.max_validation_queries
    common = {**data, "max_steps": args.max_steps, "per_device_train_batch_size": args.batch_size,
              "warmup_steps": max(1, args.max_steps // 10), "save_steps": 50, "seed": 42,
              "logging_steps": max(1, args.max_steps // 20), "lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.05}
    plan = [(mntp, "mntp", {"model_name_or_path": args.model, "train_file": str(args.data / SET_FILES["mntp"]),
                            "learning_rate": 1e-3, "mask_probability": 0.2, "textualizer": "llm4ms-v2",
                            "max_length": 256}),
            (simcse, "simcse", {"train_file": str(args.data / SET_FILES["mntp"]), "learning_rate": 3e-4,
                                "scale": 20.0, "attention_dropout": 0.1}),
            (supervised, "supervised", {"train_file": str(args.data / SET_FILES["triples"]), "learning_rate": 5e-4,
                                        "scale": 50.0, "num_negatives": 1})]
    rows, t0, previous = [], time.time(), None
    for recipe, name, values in plan:
        values = {**common, **values, "output_dir": str(args.work / name)}
        if previous is not None:
            values["model_name_or_path"] = str(previous)
        config = args.work / f"{name}.json"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(json.dumps(values, indent=2))
        start = time.time()
        if recipe.main([str(config), "--retrain", "true"]) != 0:
            return 1
        result = json.loads((args.work / name / "results.json").read_text())
        previous = args.work / name / "final"
        rows.append({"stage": name, "steps": result["steps"], "seconds": round(time.time() - start, 1),
                     "final_loss": result["final_loss"],
                     "loss_curve": [(p["step"], round(p["loss"], 4)) for p in result.get("loss_history", [])],
                     "validation_before": result.get("validation_before"),
                     "validation_after": result.get("validation_after")})
    report = {"model": args.model, "max_steps_per_stage": args.max_steps, "batch_size": args.batch_size,
              "textualizer": "llm4ms-v2", "total_seconds": round(time.time() - t0, 1),
              "machine": {"cpu_threads": torch.get_num_threads(), "python": platform.python_version(),
                          "torch": torch.__version__}, "stages": rows, "final_model": str(previous)}
    from llm4ms.utils import write_json

    write_json(args.out, report)
    print(markdown_table(report))
    print(f"wrote {args.out}")
    return 0


def markdown_table(report: dict) -> str:
    lines = [f"Model {report['model']}, {report['max_steps_per_stage']} steps/stage, batch {report['batch_size']} "
             "(recipes/mntp.py -> simcse.py -> supervised.py, LoRA per stage)",
             "", "| stage | seconds | first loss | final loss | R@1 before | R@1 after | R@10 before | R@10 after |",
             "|---|---|---|---|---|---|---|---|"]
    for r in report["stages"]:
        b, a = r["validation_before"] or {}, r["validation_after"] or {}
        first = r["loss_curve"][0][1] if r["loss_curve"] else float("nan")
        lines.append(f"| {r['stage']} | {r['seconds']} | {first:.4f} | {r['final_loss']:.4f} | {b.get('R@1')} | "
                     f"{a.get('R@1')} | {b.get('R@10')} | {a.get('R@10')} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
