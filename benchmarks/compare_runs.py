"""Pair two evaluation results query by query: is method A of run A really better than method B of run B?

    python benchmarks/compare_runs.py benchmarks/results/recall_NEW.json benchmarks/results/recall_OLD.json
    python benchmarks/compare_runs.py NEW.json OLD.json --method-a llm4ms --method-b entropy

Both results must come from `benchmarks/recall.py` or `llm4ms evaluate --out` on the same queries (they keep
each method's per-query first-hit rank). Prints A minus B at R@1 and R@10 with a 95 % paired bootstrap interval and
McNemar's exact p (`llm4ms.evaluate.uncertainty.compare_runs`), and writes benchmarks/results/compare_<name>.json
and .md. A difference whose interval holds 0 is one ~700 queries cannot tell from chance.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _bench import run_main, write_results  # noqa: E402
from llm4ms.errors import ConfigError  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_a", type=Path, help="result JSON of A")
    parser.add_argument("run_b", type=Path, help="result JSON of B (same queries)")
    parser.add_argument("--method-a", default="llm4ms")
    parser.add_argument("--method-b", default=None, help="method of run B (default: --method-a)")
    parser.add_argument("--name", default=None, help="result name (default <A stem>_vs_<B stem>)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    from llm4ms.evaluate.uncertainty import compare_runs

    runs = []
    for path in (args.run_a, args.run_b):
        try:
            runs.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as err:
            raise ConfigError(f"{path}: not a readable result JSON ({err})") from err
    method_b = args.method_b or args.method_a
    pairs = compare_runs(runs[0], args.method_a, runs[1], method_b)
    a, b = f"{args.run_a.stem}:{args.method_a}", f"{args.run_b.stem}:{method_b}"
    lines = [f"A = {a}, B = {b}, {next(iter(pairs.values()))['n_queries']} queries (each as searched)", "",
             "| k | A minus B (points) | 95 % CI | only A / only B | McNemar p |", "|---|---:|---:|---:|---:|"]
    for k, d in pairs.items():
        lines.append(f"| R@{k} | {100 * d['difference']:+.1f} | [{100 * d['interval'][0]:+.1f}, "
                     f"{100 * d['interval'][1]:+.1f}] | {d['a_only']} / {d['b_only']} | {d['p_mcnemar']:.2g} |")
    table = "\n".join(lines) + "\n"
    print(table)
    name = args.name or f"{args.run_a.stem}_vs_{args.run_b.stem}"
    command = " ".join(["python", "benchmarks/compare_runs.py"] + sys.argv[1:])
    write_results(args.out_dir, f"compare_{name}",
                  {"a": a, "b": b, "paired": pairs, "command": command}, table, f"Command: `{command}`")
    return 0


if __name__ == "__main__":
    run_main(main, "compare_runs.py")
