"""Ship the MS/MS model: copy it to llm4ms/resources/msms_model with its training record, licence and figures.

    python data_prep/ship_msms_model.py runs/msms_peak/supervised/final [--out llm4ms/resources/msms_model]

The figures come from the MS/MS benchmark runs (`benchmarks/msms_recall.py`, results
benchmarks/results/msms_recall_<name>.json: ``validation`` for the choice, ``test`` read once after it) and
from the ranking fit that `data_prep/fit_msms_ranking.py --write` stored in the model's config. The model card
(README.md) is generated from the config when the folder is saved.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

RESULTS = ROOT / "benchmarks" / "results"
SHIPPED = ROOT / "llm4ms" / "resources" / "msms_model"
CLASSIC = ("cosine_hr", "modified_cosine", "entropy_hr", "spec2vec_hr", "ms2deepscore")
LICENCE = ("Trained on MassBank MS/MS records (release 2025.05.1) of every licence: about 42 % CC BY / CC0, 20 % "
           "dl-de/by-2-0, 14 % CC BY-SA, 24 % CC BY-NC(-SA/-ND): treat these weights as CC BY-NC-SA 4.0 derived "
           "(non-commercial, share-alike, attribute MassBank and the record authors). The code is Apache-2.0.")


def figures(result: dict, label: str) -> dict[str, str]:
    """One line per block (all queries, isomer subset): llm4ms vs the best classic method, window and open."""
    methods = result["all_queries"]
    out = {}
    for key, what in (("recall_precursor_window", f"{result['settings']['precursor_tolerance']} precursor window"),
                      ("recall", "open search")):
        for subset, suffix in (("", ""), ("_isomer_subset", ", isomer subset")):
            block = {m: e[key + subset]["inchikey14"] for m, e in methods.items() if key + subset in e}
            if "llm4ms" not in block:
                continue
            classic = {m: v for m, v in block.items() if m in CLASSIC}
            text = f"R@1 {100 * block['llm4ms']['1']:.1f}, R@10 {100 * block['llm4ms']['10']:.1f}"
            if classic:
                best = max(classic, key=lambda m: classic[m]["1"])
                margin = 100 * (block["llm4ms"]["1"] - classic[best]["1"])
                text += (f"; best classic {best}: R@1 {100 * classic[best]['1']:.1f}, R@10 "
                         f"{100 * classic[best]['10']:.1f} ({margin:+.1f} points R@1)")
            out[f"{label}, {what}{suffix}"] = text + f"; `{result['settings']['command']}`"
    return out


def load(name: str) -> Optional[dict]:
    path = RESULTS / f"msms_recall_{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def ship(source: Path, out: Path = SHIPPED) -> Path:
    from llm4ms.model import SpectrumEncoder

    encoder = SpectrumEncoder.from_pretrained(source)
    record = dict(encoder.config.get("training") or {})
    encoder.config["training"] = {
        "model": "peak-token Llama h128 x 2 layers (one token per integer fragment m/z and log-intensity bin), "
                 "bidirectional, mean pooling",
        "recipe": "supervised contrastive (sentence-transformers MultipleNegativesRankingLoss), "
                  "recipes/configs/msms_peak_supervised.json, full weights, the best validation checkpoint kept",
        "stages": record.get("stages", []),
        "data": "MassBank MS/MS (MassBank/MassBank-data release 2025.05.1) TRAIN split: MS2 records with a structure, "
                "cleaned (llm4ms.msms.clean_msms); triples = a spectrum, another spectrum of the same compound and "
                "ion mode (preferring another collision energy or instrument), and the most similar other compound "
                "in the 0.01 Da precursor window (data_prep/build_msms_training_sets.py)",
        "split": "llm4ms.data.split.compound_split (InChIKey first block); validation and test compounds never "
                 "trained on",
        "selection": "validation split only (benchmarks/msms_recall.py --split validation; "
                     "data_prep/fit_msms_ranking.py for the fusion weight)",
        "license": "cc-by-nc-sa-4.0",
        "licence_note": LICENCE,
        "reproduce": "bash data_prep/build_msms_model.sh",
        "ranking": encoder.config.get("ranking"),
        "use": "llm4ms embed --spectra LIB.mgf --model msms --out LIB_DIR; llm4ms search --query Q.mgf --library "
               "LIB_DIR --precursor-tolerance 10ppm --ion-mode positive",
    }
    scores: dict[str, Any] = {k: v for k, v in (encoder.config.get("scores") or {}).items()
                              if k.startswith("validation ranking fit")}
    for name, label in (("validation", "MassBank MS/MS validation"), ("test", "MassBank MS/MS test")):
        result = load(name)
        if result is not None:
            scores.update(figures(result, label))
    encoder.config["scores"] = scores
    encoder.invalidate_identity()
    encoder.save_pretrained(out)
    size_mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6
    print(f"shipped {out} ({size_mb:.1f} MB)")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("--out", type=Path, default=SHIPPED)
    args = parser.parse_args(argv)
    ship(args.source, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
