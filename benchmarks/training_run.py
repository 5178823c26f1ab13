"""Recorded run: MNTP -> SimCSE -> supervised on the MassBank EI train split with a small CPU model.

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


def _stage_run(name, encoder, settings, train, evaluate, lora, extra):
    from llm4ms.training import stages

    fn = {"mntp": stages.train_mntp, "simcse": stages.train_simcse, "supervised": stages.train_supervised}[name]
    t0 = time.time()
    result = fn(encoder, train, settings, lora, evaluate=evaluate, **extra)
    final = stages.finish_stage(encoder, settings, name, result, {"examples": len(train)}, extra)
    log = [json.loads(line) for line in (Path(settings.output_dir) / "loss_log.jsonl").read_text().splitlines()]
    return final, {"stage": name, "steps": result.steps, "seconds": round(time.time() - t0, 1),
                   "final_loss": result.final_loss, "loss_curve": [(r["step"], round(r["loss"], 4)) for r in log],
                   "validation_before": result.validation.get("before"),
                   "validation_after": result.validation.get("after")}


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

    from llm4ms.model.encoder import LoraSettings
    from llm4ms.text import Textualizer
    from llm4ms.training import stages
    from llm4ms.training.data import SET_FILES, load_records, load_spectra, triple_texts
    from llm4ms.training.trainers import LoopSettings

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    textualizer = Textualizer.from_preset("llm4ms-v2")
    unsup = load_spectra(args.data / SET_FILES["mntp"])
    queries = load_spectra(args.data / SET_FILES["validation_queries"])[:args.max_validation_queries]
    library = load_spectra(args.data / SET_FILES["validation_library"])
    texts = [textualizer(s) for s in unsup]
    base = stages.resolve_base(args.model, texts, args.work / "base")
    encoder = stages.load_encoder(base, textualizer, max_length=256)
    lora = LoraSettings(r=16, alpha=32, dropout=0.05)
    plan = [("mntp", texts, 1e-3, {"mask_probability": 0.2}),
            ("simcse", texts, 3e-4, {"scale": 20.0, "attention_dropout": 0.1}),
            ("supervised", None, 5e-4, {"scale": 50.0, "num_negatives": 1})]
    rows, t0 = [], time.time()
    for name, train, lr, extra in plan:
        if name != "mntp":
            encoder = stages.load_encoder(str(final))
        if train is None:
            train = triple_texts(load_records(args.data / SET_FILES["triples"]), encoder.textualizer, 1)
        evaluate = stages.retrieval_evaluator(encoder, queries, library)
        settings = LoopSettings(output_dir=str(args.work / name), max_steps=args.max_steps, batch_size=args.batch_size,
                                learning_rate=lr, warmup_steps=max(1, args.max_steps // 10), save_steps=50,
                                logging_steps=max(1, args.max_steps // 20), seed=42)
        final, row = _stage_run(name, encoder, settings, train, evaluate, lora, extra)
        rows.append(row)
        print(f"{name}: {row['seconds']} s, loss {row['final_loss']:.4f}, "
              f"R@1/@10 {row['validation_before']} -> {row['validation_after']}", flush=True)
    report = {"model": args.model, "max_steps_per_stage": args.max_steps, "batch_size": args.batch_size,
              "textualizer": "llm4ms-v2", "train_texts": len(texts), "validation_queries": len(queries),
              "validation_library": len(library), "total_seconds": round(time.time() - t0, 1),
              "machine": {"cpu_threads": torch.get_num_threads(), "python": platform.python_version(),
                          "torch": torch.__version__}, "stages": rows, "final_model": str(final)}
    from llm4ms.utils import write_json

    write_json(args.out, report)
    print(markdown_table(report))
    print(f"wrote {args.out}")
    return 0


def markdown_table(report: dict) -> str:
    lines = [f"Model {report['model']}, {report['max_steps_per_stage']} steps/stage, batch {report['batch_size']}; "
             f"validation: {report['validation_queries']} queries vs {report['validation_library']} spectra",
             "", "| stage | seconds | first loss | final loss | R@1 before | R@1 after | R@10 before | R@10 after |",
             "|---|---|---|---|---|---|---|---|"]
    for r in report["stages"]:
        b, a = r["validation_before"] or {}, r["validation_after"] or {}
        first = r["loss_curve"][0][1] if r["loss_curve"] else float("nan")
        lines.append(f"| {r['stage']} | {r['seconds']} | {first:.4f} | {r['final_loss']:.4f} | {b.get('recall@1')} | "
                     f"{a.get('recall@1')} | {b.get('recall@10')} | {a.get('recall@10')} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
