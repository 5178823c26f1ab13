"""Train the bundled NEIMS-style EI predictor on the TRAIN split of MassBank EI (nominal set).

    PYTHONPATH=. python data_prep/train_predictor.py                      # writes llm4ms/resources/predictor
    PYTHONPATH=. python data_prep/train_predictor.py --out /tmp/pred --hidden 256 256 --max-minutes 2

Compounds are split by InChIKey first block (`llm4ms.data.split.compound_split`); validation drives early
stopping; test compounds are never read for training (see benchmarks/predictor_quality.py).
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llm4ms.io import read_spectra  # noqa: E402
from llm4ms.predict.featurize import FeaturizerSettings  # noqa: E402
from llm4ms.predict.model import LossSettings  # noqa: E402
from llm4ms.predict.predictor import BUNDLED_DIR, EIPredictor  # noqa: E402
from llm4ms.predict.training import (TrainSettings, build_compound_table, default_data_path,  # noqa: E402
                                     train)
from llm4ms.utils import write_json  # noqa: E402

README = """# llm4ms EI spectrum predictor (NEIMS-style MLP)

Predicts nominal-mass 70 eV EI spectra (m/z 0-{max_mz}) from a SMILES. Input: Morgan count fingerprint
(radius {radius}, {n_bits} bits, log1p counts) + {n_desc} descriptors (element counts, exact mass, rings,
aromatic atoms, rotatable bonds, charge flag). Network: MLP {hidden} (ReLU, dropout {dropout}) with a
forward head, a reverse head aligned to the integer molecular mass (bin j -> m/z M - j) and a per-bin
sigmoid gate; output masked above M + {margin}. Loss: 1 - cosine on sqrt intensities, half of it weighted
by m/z. Weights stored as fp16 safetensors.

Accepted molecules: one fragment, elements {elements}, exact mass <= {max_mass:g} (FastEI's filter).

## Training data
MassBank EI nominal set (`massbank_ei_nominal.msp`, MassBank-data release 2025.05.1, commit 13484d41),
{n_spectra} spectra -> {n_compounds} compounds (replicates averaged in sqrt space); TRAIN split only
({n_train} compounds), early stopping on the VALIDATION split ({n_val} compounds), split by InChIKey
first block with `llm4ms.data.split.compound_split` (salt llm4ms-split-v1). Best epoch {best_epoch},
validation loss {best_val:.4f}, {minutes:.1f} CPU minutes.

## Licence
The code is Apache-2.0. The weights are derived from MassBank records that are mostly CC BY-NC-SA
(about 95 % of the nominal set; the rest CC BY / CC BY-SA): treat these weights as CC BY-NC-SA 4.0
(non-commercial, share-alike, attribute MassBank and the record authors). Retrain with
`--licenses "CC BY" "CC BY-SA"` for a commercially usable (much weaker) model.

## Limits
A few thousand training compounds (NEIMS used NIST17, about 240 k): predictions are a rough prior,
good enough to make an in-silico library for tests and demonstrations, not NIST-quality. See
benchmarks/results/predictor_quality.json for measured cosine and recall against measured spectra.
"""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=default_data_path())
    p.add_argument("--out", type=Path, default=BUNDLED_DIR)
    p.add_argument("--n-bits", type=int, default=4096)
    p.add_argument("--hidden", type=int, nargs="+", default=[512, 512])
    p.add_argument("--dropout", type=float, default=0.25)
    p.add_argument("--mass-margin", type=int, default=5)
    p.add_argument("--epochs", type=int, default=80)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-5)
    p.add_argument("--patience", type=int, default=8)
    p.add_argument("--weighted-share", type=float, default=0.5, help="share of the m/z-weighted cosine loss")
    p.add_argument("--max-minutes", type=float, default=6.0)
    p.add_argument("--licenses", nargs="*", default=None, help="keep only records with these LICENSE values")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    featurizer = FeaturizerSettings(n_bits=args.n_bits)
    spectra = read_spectra(args.data)
    if args.licenses:
        wanted = set(args.licenses)
        spectra = (s for s in spectra if s.get("license") in wanted)
    t0 = time.monotonic()
    table = build_compound_table(spectra, featurizer, n_jobs=args.jobs)
    logging.info("%d spectra -> %d compounds (rejected %s) in %.1f s", table.n_spectra, len(table.keys),
                 table.rejected, time.monotonic() - t0)
    torch.manual_seed(args.seed)  # initial weights too, so a rerun reproduces the shipped file
    predictor = EIPredictor.new(featurizer, hidden=tuple(args.hidden), dropout=args.dropout,
                                mass_margin=args.mass_margin)
    settings = TrainSettings(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                             weight_decay=args.weight_decay, patience=args.patience,
                             max_minutes=args.max_minutes, seed=args.seed,
                             loss=LossSettings(weighted_share=args.weighted_share))
    result = train(predictor, table, settings)
    n_params = sum(p.numel() for p in predictor.model.parameters())
    predictor.info = {
        "training_data": f"{args.data.name} (MassBank EI nominal set, release 2025.05.1), train split",
        "licenses": args.licenses or "all (mostly CC BY-NC-SA)",
        "n_spectra": table.n_spectra, "n_compounds": len(table.keys), "n_train": result["n_train"],
        "n_validation": result["n_validation"], "best_epoch": result["best_epoch"],
        "best_val_loss": round(result["best_val_loss"], 5), "n_parameters": n_params,
        "train_settings": {k: v for k, v in vars(args).items() if k not in ("data", "out")},
    }
    readme = README.format(
        max_mz=predictor.model.config.max_mz, radius=featurizer.radius, n_bits=featurizer.n_bits,
        n_desc=featurizer.n_descriptors, hidden=" x ".join(map(str, args.hidden)), dropout=args.dropout,
        margin=args.mass_margin, elements=" ".join(featurizer.allowed_elements), max_mass=featurizer.max_mass,
        n_spectra=table.n_spectra, n_compounds=len(table.keys), n_train=result["n_train"],
        n_val=result["n_validation"], best_epoch=result["best_epoch"], best_val=result["best_val_loss"],
        minutes=result["minutes"])
    predictor.save_pretrained(args.out, readme=readme)
    write_json(args.out / "training_history.json", result["history"])
    size = (args.out / "model.safetensors").stat().st_size / 1e6
    print(f"saved {args.out} ({n_params / 1e6:.2f} M parameters, {size:.1f} MB): best epoch "
          f"{result['best_epoch']}, validation loss {result['best_val_loss']:.4f}, {result['minutes']:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
