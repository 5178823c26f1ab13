"""What a better predictor is worth to a user: recall of classic scores on in-silico libraries rebuilt with each
predictor (same measured queries, same candidate structures, only the predicted spectra differ).

    python benchmarks/predictor_recall.py --predictors bundled,work_data/predictor/NEW --split validation --sizes 10k
    python benchmarks/predictor_recall.py --predictors bundled,llm4ms/resources/predictor --split test --sizes 10k,100k
    python benchmarks/predictor_recall.py --predictors bundled,bundled+ref --references train --split validation

An entry ending in `+ref` is that predictor mixing in the measured spectra of --references ('train': the TRAIN
split of the shared MassBank EI set, never a query compound; or a spectrum file), see
`llm4ms.predict.references`.

For each predictor the library's structures (targets + decoys of `data_prep/build_benchmark.py`, taken from
--data) are predicted into their own folder (work_data/benchmark_predictors/<identity>/, resumable), and
`benchmarks/recall.py` scores them with the classic methods, no mass prior (the scores as users run them;
`--prior model --methods llm4ms,...` compares the default llm4ms ranking with its prior on every method).
Prints one table and writes benchmarks/results/predictor_recall_<split>.{json,md}. The recall runs are
recall.py's own; this script only arranges the folders and joins the results.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _bench import run_main, write_results  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SHARED_INPUTS = ("queries.msp", "targets.tsv")


def predictor_identity(reference: str, references: str | None = None) -> tuple[str, str]:
    """(identity, label) of a predictor entry; 'bundled' = the weights shipped in the package, a `+ref` suffix
    = with `references` mixed in (the identity then names them too)."""
    from llm4ms.predict import EIPredictor
    from llm4ms.predict.training import resolve_references

    folder = reference.removesuffix("+ref")
    predictor = EIPredictor.from_pretrained(None if folder == "bundled" else folder)
    if reference.endswith("+ref"):
        if not references:
            raise SystemExit(f"{reference}: a '+ref' predictor needs --references")
        predictor.use_references(resolve_references(references))
        return predictor.identity[:12] + "-ref" + predictor.references.identity, reference
    return predictor.identity[:12], reference


def prepare(data: Path, out: Path, split: str, size: str) -> None:
    """Copy the split's queries, targets and decoy list into a predictor's own benchmark folder."""
    source, target = data / f"insilico_{split}", out / f"insilico_{split}"
    target.mkdir(parents=True, exist_ok=True)
    for name in SHARED_INPUTS + (f"decoys_{size}.tsv",):
        if not (source / name).exists():
            raise SystemExit(f"{source / name}: missing; build it with `python data_prep/build_benchmark.py "
                             f"targets --split {split}` and `decoys --sizes {size}`")
        if not (target / name).exists():
            shutil.copyfile(source / name, target / name)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictors", default="bundled", help="comma-separated: 'bundled' or predictor folders")
    parser.add_argument("--split", default="validation", choices=("validation", "test"))
    parser.add_argument("--sizes", default="10k")
    parser.add_argument("--methods", default="cosine_sqrt,entropy")
    parser.add_argument("--data", type=Path, default=ROOT / "work_data" / "benchmark")
    parser.add_argument("--work", type=Path, default=ROOT / "work_data" / "benchmark_predictors")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prior", default="off",
                        help="recall.py's --prior for every method: off (the scores as users run them) or model")
    parser.add_argument("--name", default=None, help="result name (default predictor_recall_<split>)")
    parser.add_argument("--references", default=None,
                        help="reference spectra of the '+ref' entries: 'train' or a spectrum file")
    args = parser.parse_args(argv)

    rows, t0 = [], time.perf_counter()
    for reference in [p.strip() for p in args.predictors.split(",") if p.strip()]:
        identity, label = predictor_identity(reference, args.references)
        folder = args.work / identity
        for size in [s.strip() for s in args.sizes.split(",") if s.strip()]:
            prepare(args.data, folder, args.split, size)
            name = f"predictor_{identity}_{args.split}_{size}"
            command = [sys.executable, str(ROOT / "benchmarks" / "recall.py"), "--benchmark", "insilico",
                       "--split", args.split, "--size", size, "--methods", args.methods, "--prior", args.prior,
                       "--data", str(folder), "--threads", str(args.threads), "--name", name]
            folder_name = reference.removesuffix("+ref")
            if folder_name != "bundled":
                command += ["--predictor", folder_name]
            if reference.endswith("+ref"):
                command += ["--predictor-references", args.references]
            done = subprocess.run(command, cwd=ROOT)
            if done.returncode != 0:
                return done.returncode
            result_path = RESULTS / f"recall_{name}.json"
            result = json.loads(result_path.read_text())
            for method, entry in result["methods"].items():
                recall = entry["recall"]["inchikey14"]
                rows.append({"predictor": label, "identity": identity, "size": size, "method": method,
                             "n_queries": entry["recall"]["n_queries"], "R@1": round(100 * recall["1"], 1),
                             "R@10": round(100 * recall["10"], 1),
                             "R@1_same_mass": round(100 * entry["recall_mass_filtered"]["inchikey14"]["1"], 1)})
                if "recall_with_prior" in entry:  # --prior model: the ranking as searched, prior on every method
                    with_prior = entry["recall_with_prior"]["inchikey14"]
                    rows[-1].update({"R@1_prior": round(100 * with_prior["1"], 1),
                                     "R@10_prior": round(100 * with_prior["10"], 1)})
            result_path.unlink()  # joined here; one result file per run of this script
            result_path.with_suffix(".md").unlink(missing_ok=True)

    prior = any("R@1_prior" in r for r in rows)
    header = "| predictor | identity | library | method | R@1 | R@10 | R@1 same nominal mass |" + (
        " R@1 with prior | R@10 with prior |" if prior else "")
    lines = [header, "|---|---|---|---|---:|---:|---:|" + ("---:|---:|" if prior else "")]
    lines += [f"| {r['predictor']} | {r['identity']} | {r['size']} | {r['method']} | {r['R@1']} | {r['R@10']} | "
              f"{r['R@1_same_mass']} |" + (f" {r.get('R@1_prior', '')} | {r.get('R@10_prior', '')} |" if prior else "")
              for r in rows]
    command = "python benchmarks/predictor_recall.py " + " ".join(argv if argv is not None else sys.argv[1:])
    footer = f"Command: `{command}` ({(time.perf_counter() - t0) / 60:.1f} min)"
    print("\n".join(lines) + "\n\n" + footer)
    write_results(RESULTS, args.name or f"predictor_recall_{args.split}",
                  {"split": args.split, "command": command, "rows": rows}, "\n".join(lines), footer)
    return 0


if __name__ == "__main__":
    run_main(main, "predictor_recall.py")
