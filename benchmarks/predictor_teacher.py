"""Teachers and students of the predictor on the VALIDATION compounds, alone and averaged.

    python benchmarks/predictor_teacher.py --models work_data/predictor/v2/members/0 \
        work_data/predictor/v2/members/1 work_data/predictor/v2/members/2 work_data/teacher/gine

Each model (a predictor folder or a graph-teacher folder of `data_prep/train_teacher.py`, all on one
featuriser) predicts the validation compounds of the training table (replicates averaged, 40-60 eV extra
records as in training); printed per model and for the mean of all predictor folders, of all teachers and of
everything: the training loss, mean cosine (linear intensities) and mean sqrt cosine. Per compound, before
any output post-processing: it says whether a teacher knows more than the students, which decides whether
its labels can teach them. Writes benchmarks/results/predictor_teacher.{json,md}.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _bench import run_main, write_results  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def main(argv=None) -> int:
    from llm4ms.errors import ConfigError
    from llm4ms.predict.model import LossSettings, spectrum_loss
    from llm4ms.predict.teacher import Labeller, graphs_for
    from llm4ms.predict.training import training_table

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=Path, nargs="+", required=True)
    p.add_argument("--extra-data-min-ev", type=float, default=40.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--name", default="predictor_teacher")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    labellers = [Labeller.load(path) for path in args.models]
    featurizer = labellers[0].featurizer
    table, _ = training_table(featurizer, extra_min_ev=args.extra_data_min_ev)
    rows = np.flatnonzero(table.splits == "validation")
    x, m, y = table.features[rows], table.masses[rows], torch.from_numpy(table.targets[rows])
    graphs = graphs_for([table.smiles[i] for i in rows]) if any(lab.uses_graphs for lab in labellers) else None
    outputs: dict[str, tuple[torch.Tensor, bool]] = {}
    for path, labeller in zip(args.models, labellers):
        if labeller.featurizer != featurizer:
            raise ConfigError(f"{path}: another featuriser than {args.models[0]}")
        outputs[str(path)] = (labeller.predict(x, m, graphs), labeller.uses_graphs)

    def score(pred: torch.Tensor) -> dict:
        cos = torch.nn.functional.cosine_similarity(pred ** 2, y ** 2, dim=1).mean()
        sqrt = torch.nn.functional.cosine_similarity(pred, y, dim=1).mean()
        return {"loss": round(float(spectrum_loss(pred, y, LossSettings())), 4), "cosine": round(float(cos), 4),
                "sqrt_cosine": round(float(sqrt), 4)}

    results = [{"model": name, "kind": "teacher" if t else "predictor", **score(pred)}
               for name, (pred, t) in outputs.items()]
    groups = {"mean of predictors": [p for p, t in outputs.values() if not t],
              "mean of teachers": [p for p, t in outputs.values() if t],
              "mean of all": [p for p, _ in outputs.values()]}
    for label, preds in groups.items():
        if len(preds) > 1 or (preds and label == "mean of all" and len(outputs) > 1):
            results.append({"model": label, "kind": "mean", **score(torch.stack(preds).mean(dim=0))})
    lines = ["| model | kind | loss | cosine | sqrt cosine |", "|---|---|---:|---:|---:|"]
    lines += [f"| {r['model']} | {r['kind']} | {r['loss']} | {r['cosine']} | {r['sqrt_cosine']} |" for r in results]
    command = "python benchmarks/predictor_teacher.py " + " ".join(argv if argv is not None else sys.argv[1:])
    footer = (f"{len(rows)} validation compounds. Command: `{command}` "
              f"({(time.perf_counter() - t0) / 60:.1f} min)")
    print("\n".join(lines) + "\n\n" + footer)
    write_results(RESULTS, args.name, {"command": command, "n_compounds": int(len(rows)), "rows": results},
                  "\n".join(lines), footer)
    return 0


if __name__ == "__main__":
    run_main(main, "predictor_teacher.py")
