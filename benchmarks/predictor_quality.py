"""How close are predicted EI spectra to measured ones? (TEST-split compounds of MassBank EI, nominal set)

    PYTHONPATH=. python benchmarks/predictor_quality.py [--model DIR] [--speed-n 2000]
    PYTHONPATH=. python benchmarks/predictor_quality.py --split validation --speed-n 0   # for model choices

`--split validation` scores the VALIDATION compounds instead (use it to choose between models; the test
split is read only for the final report) and writes predictor_quality_validation.json unless --out says
otherwise. With `--split validation` no test-split spectrum is read at all.

For every measured spectrum of a test compound: cosine (linear and sqrt intensities) and weighted cosine
(NIST GC weights W = mz^3 * I^0.6; reported as the cosine of the weighted vectors, i.e. sqrt of NIST's DP)
against (a) the prediction for its structure and (b) a trivial baseline, the mean training spectrum masked to
m/z <= M. Then identification in a small in-silico library made of the predictions for all test compounds:
the rank of the true compound for each measured spectrum (Recall@1/@10), also among the candidates of the
same nominal molecular mass (what a mass filter leaves). Speed: molecules/s of
`EIPredictor.predict` on MOSES SMILES with 1 and 2 featurisation processes.
Writes benchmarks/results/predictor_quality.json (test split) or predictor_quality_validation.json.
"""
from __future__ import annotations

import argparse
import gzip
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llm4ms.data.split import compound_split  # noqa: E402
from llm4ms.io import read_spectra  # noqa: E402
from llm4ms.predict.predictor import CONFIDENCE_KEY, EIPredictor  # noqa: E402
from llm4ms.spectrum import binned_vector, normalize_intensities, to_nominal_mass  # noqa: E402
from llm4ms.utils import write_json  # noqa: E402
from llm4ms.data.shared import shared_path  # noqa: E402

# inside the shared data folder; looked up when the script runs, not at import
DATA = ("massbank_ei", "massbank_ei_nominal.msp")
MOSES = ("molecules", "moses_test.csv.gz")
MAX_MZ = 1000


def linear_vector(spectrum) -> np.ndarray | None:
    s = normalize_intensities(to_nominal_mass(spectrum))
    return None if s is None else binned_vector(s, max_mz=MAX_MZ)


def transform(v: np.ndarray, kind: str) -> np.ndarray:
    """Rows of linear intensities -> the vectors whose cosine is the named score, L2-normalised."""
    mz = np.arange(v.shape[-1], dtype=np.float64)
    if kind == "cosine":
        w = v.astype(np.float64)
    elif kind == "sqrt_cosine":
        w = np.sqrt(v.astype(np.float64))
    elif kind == "weighted_cosine":
        w = (mz ** 3) * np.power(v.astype(np.float64), 0.6)
    else:
        raise ValueError(kind)
    norm = np.linalg.norm(w, axis=-1, keepdims=True)
    return w / np.where(norm > 0, norm, 1.0)


def recall(scores: np.ndarray, truth: np.ndarray, ks=(1, 10)) -> dict:
    true_score = scores[np.arange(len(truth)), truth]
    rank = 1 + (scores > true_score[:, None]).sum(axis=1)  # ties count in the true compound's favour
    return {f"recall@{k}": float(np.mean(rank <= k) * 100) for k in ks} | {"median_rank": float(np.median(rank))}


def speed(predictor: EIPredictor, n: int) -> dict:
    moses = shared_path(*MOSES)
    with gzip.open(moses, "rt") as handle:
        handle.readline()
        smiles = [line.split(",")[0].strip() for _, line in zip(range(n), handle)]
    out = {"n_molecules": len(smiles), "source": moses.name}
    for jobs in (1, 2):
        t0 = time.perf_counter()
        spectra = predictor.predict(smiles, batch_size=256, n_jobs=jobs)
        dt = time.perf_counter() - t0
        out[f"mol_per_s_jobs{jobs}"] = round(len(smiles) / dt, 1)
        out[f"predicted_jobs{jobs}"] = sum(s is not None for s in spectra)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=None, help="predictor folder (default: bundled)")
    p.add_argument("--data", type=Path, default=None,
                   help="MassBank EI MSP (default: massbank_ei/massbank_ei_nominal.msp in the shared data folder)")
    p.add_argument("--speed-n", type=int, default=2000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--split", choices=("validation", "test"), default="test",
                   help="which held-out compounds to score (choose models on validation; default test)")
    p.add_argument("--references", default=None,
                   help="mix in measured reference spectra: 'train' (the TRAIN split of --data) or a spectrum file "
                        "(llm4ms.predict.references)")
    p.add_argument("--blend", default=None, metavar="K,TEMPERATURE,WEIGHT",
                   help="with --references: blend settings other than the defaults (llm4ms.predict.references)")
    p.add_argument("--out", type=Path, default=None,
                   help="result JSON (default benchmarks/results/predictor_quality.json for the test split, "
                        "predictor_quality_validation.json for the validation split)")
    args = p.parse_args(argv)
    if args.out is None:
        name = "predictor_quality.json" if args.split == "test" else f"predictor_quality_{args.split}.json"
        args.out = ROOT / "benchmarks" / "results" / name
    args.data = args.data or shared_path(*DATA)
    torch.set_num_threads(args.threads)
    predictor = EIPredictor.from_pretrained(args.model)
    if args.references:
        from llm4ms.predict.training import resolve_references

        from llm4ms.predict.references import BlendSettings

        settings = None
        if args.blend:
            try:
                k, temperature, weight = args.blend.split(",")
                settings = BlendSettings(int(k), float(temperature), float(weight))
            except ValueError as err:
                p.error(f"--blend must be K,TEMPERATURE,WEIGHT (k >= 1, temperature > 0, 0 <= weight <= 1): {err}")
        predictor.use_references(resolve_references(args.references, args.data), settings)

    train_sum, n_train = np.zeros(MAX_MZ + 1), 0
    test_vecs, test_keys, smiles_of = [], [], {}
    for spectrum in read_spectra(args.data):
        key, smi = spectrum.inchikey14, spectrum.smiles
        if not key or not smi:
            continue
        split = compound_split(key)
        if split not in ("train", args.split):
            continue  # the other held-out split is never read
        vec = linear_vector(spectrum)
        if vec is None:
            continue
        if split == "train":
            train_sum += vec
            n_train += 1
        else:
            test_vecs.append(vec)
            test_keys.append(key)
            smiles_of.setdefault(key, smi)
    compounds = sorted(smiles_of)
    t0 = time.perf_counter()
    predicted = predictor.predict([smiles_of[k] for k in compounds], batch_size=256)
    pred_seconds = time.perf_counter() - t0
    ok = {k: s for k, s in zip(compounds, predicted) if s is not None}
    keys = sorted(ok)
    col = {k: i for i, k in enumerate(keys)}
    pred = np.stack([binned_vector(ok[k], max_mz=MAX_MZ) for k in keys]).astype(np.float64)
    masses = np.array([int(np.floor(float(ok[k].get("exact_mass")) + 0.5)) for k in keys])
    mean_train = train_sum / max(n_train, 1)
    mz = np.arange(MAX_MZ + 1)
    base = np.where(mz[None, :] <= masses[:, None], mean_train[None, :], 0.0)

    rows = [i for i, k in enumerate(test_keys) if k in col]
    meas = np.stack([test_vecs[i] for i in rows]).astype(np.float64)
    truth = np.array([col[test_keys[i]] for i in rows])
    results = {"data": args.data.name, "predictor": predictor.identity, "split": args.split,
               "n_test_compounds": len(compounds), "n_test_compounds_predicted": len(keys),
               "n_measured_test_spectra": len(rows), "n_train_spectra_in_mean_baseline": n_train,
               "note": "weighted_cosine = cosine of mz^3*I^0.6 vectors (sqrt of NIST DP); recall: true "
                       "compound's prediction ranked among all test-compound predictions",
               "prediction_seconds_test_set": round(pred_seconds, 2), "scores": {}}
    same_mass = masses[None, :] == masses[truth][:, None]  # candidates a molecular-mass filter would keep
    results["median_candidates_same_nominal_mass"] = float(np.median(same_mass.sum(axis=1)))
    for kind in ("cosine", "sqrt_cosine", "weighted_cosine"):
        q = transform(meas, kind)
        lib_pred, lib_base = transform(pred, kind), transform(base, kind)
        s_pred, s_base = q @ lib_pred.T, q @ lib_base.T
        results["scores"][kind] = {
            "predicted_mean": float(np.mean(s_pred[np.arange(len(rows)), truth])),
            "baseline_mean": float(np.mean(s_base[np.arange(len(rows)), truth])),
            "predicted": recall(s_pred, truth), "baseline": recall(s_base, truth),
            "predicted_same_nominal_mass": recall(np.where(same_mass, s_pred, -np.inf), truth)}
    conf = np.array([float(ok[k].get(CONFIDENCE_KEY) or np.nan) for k in keys])
    if np.isfinite(conf).all():  # an ensemble: does its confidence tell good predictions from bad?
        from scipy.stats import spearmanr

        cos = (transform(meas, "cosine") * transform(pred, "cosine")[truth]).sum(axis=1)
        c = conf[truth]
        low = c <= np.quantile(c, 0.25)
        results["confidence"] = {
            "spearman_vs_cosine": float(spearmanr(c, cos).correlation), "mean": float(c.mean()),
            "cosine_lowest_quarter": float(cos[low].mean()), "cosine_other_three_quarters": float(cos[~low].mean())}
    results["speed"] = speed(predictor, args.speed_n) if args.speed_n > 0 else {}
    write_json(args.out, results)

    print(f"predictor {predictor.identity}: {len(keys)} {args.split} compounds, {len(rows)} measured spectra")
    print(f"{'score':<16} {'pred mean':>9} {'base mean':>9} {'pred R@1':>8} {'pred R@10':>9} "
          f"{'base R@1':>8} {'base R@10':>9} {'mass-filt R@1':>13}")
    for kind, r in results["scores"].items():
        print(f"{kind:<16} {r['predicted_mean']:9.3f} {r['baseline_mean']:9.3f} {r['predicted']['recall@1']:8.1f} "
              f"{r['predicted']['recall@10']:9.1f} {r['baseline']['recall@1']:8.1f} {r['baseline']['recall@10']:9.1f} "
              f"{r['predicted_same_nominal_mass']['recall@1']:13.1f}")
    if "confidence" in results:
        c = results["confidence"]
        print(f"confidence: Spearman {c['spearman_vs_cosine']:.3f} vs cosine; cosine {c['cosine_lowest_quarter']:.3f} "
              f"in the least confident quarter, {c['cosine_other_three_quarters']:.3f} in the rest")
    if results["speed"]:
        sp = results["speed"]
        print(f"speed: {sp['mol_per_s_jobs1']} mol/s (1 process), {sp['mol_per_s_jobs2']} mol/s (2 processes), "
              f"{sp['n_molecules']} MOSES molecules")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
