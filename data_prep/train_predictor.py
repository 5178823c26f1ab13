"""Train the bundled NEIMS-style EI predictor on the TRAIN split of MassBank EI (nominal set).

    PYTHONPATH=. python data_prep/train_predictor.py                      # writes llm4ms/resources/predictor
    PYTHONPATH=. python data_prep/train_predictor.py --out /tmp/pred --hidden 256 256 --max-minutes 2
    # v2 options: extra feature blocks, residual body / MoE, low-energy extra train compounds,
    # exact isotope envelope, an ensemble of N seeds (writes PredictionConfidence)
    PYTHONPATH=. python data_prep/train_predictor.py --out work_data/predictor/NAME --extra chem \
        --arch resmlp --extra-data-min-ev 40 --isotope-envelope anchor --members 3

Compounds are split by InChIKey first block (`llm4ms.data.split.compound_split`); validation drives early
stopping; test compounds are never read for training (see benchmarks/predictor_quality.py).
"""
from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from llm4ms.predict.featurize import FeaturizerSettings  # noqa: E402
from llm4ms.predict.model import LossSettings, NEIMSEnsemble  # noqa: E402
from llm4ms.predict.predictor import BUNDLED_DIR, EIPredictor, OutputSettings  # noqa: E402
from llm4ms.predict.training import (TrainSettings, default_data_path, load_pseudo_labels,  # noqa: E402
                                     train, training_table)
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
    p.add_argument("--linear-share", type=float, default=0.0,
                   help="share of 1 - cosine on linear intensities in the loss (the search score)")
    p.add_argument("--ensemble-from", type=Path, nargs="*", default=None,
                   help="no training: combine these saved predictors (same config) into an ensemble at --out")
    p.add_argument("--max-minutes", type=float, default=6.0)
    p.add_argument("--licenses", nargs="*", default=None, help="keep only records with these LICENSE values")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--extra", nargs="*", default=[], choices=["maccs", "atompair", "chem"],
                   help="extra feature blocks after the descriptors (FeaturizerSettings.extra)")
    p.add_argument("--arch", choices=["mlp", "resmlp"], default="mlp")
    p.add_argument("--n-experts", type=int, default=0, help="> 0: mixture-of-experts residual layer")
    p.add_argument("--members", type=int, default=1,
                   help="> 1: train this many seeds (seed, seed+1, ...) and save their ensemble")
    p.add_argument("--isotope-envelope", choices=["", "fit", "anchor"], default="",
                   help="write the formula's exact isotope envelope at M..M+5 into predictions")
    p.add_argument("--extra-data-min-ev", type=float, default=None,
                   help="add TRAIN compounds from massbank_ei_all.msp records outside the nominal set "
                        "with ionization energy >= this (eV); default: none")
    p.add_argument("--no-member-folders", action="store_true",
                   help="with --members > 1, do not also save each member under OUT/members (the shipped copy)")
    p.add_argument("--ema", type=float, default=0.0,
                   help="> 0: keep (and validate) an exponential moving average of the weights, this decay per step")
    p.add_argument("--energy-conditioning", action="store_true",
                   help="keep the extra records' ionization energies: they train through per-energy-group "
                        "scale/shift of the last hidden layer (training only; the saved predictor is unchanged) "
                        "and the nominal set's own compounds join with their other-energy records")
    p.add_argument("--pseudo", type=Path, nargs="*", default=None,
                   help="teacher-labelled structures (.npz from data_prep/train_teacher.py label) to add to TRAIN")
    p.add_argument("--pseudo-weight", type=float, default=0.5, help="loss weight of a teacher-labelled row")
    p.add_argument("--pseudo-max", type=int, default=None, help="use at most this many teacher-labelled rows")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.ensemble_from:
        return combine(args)
    torch.set_num_threads(args.threads)
    featurizer = FeaturizerSettings(n_bits=args.n_bits, extra=tuple(args.extra))
    if args.energy_conditioning and args.extra_data_min_ev is None:
        raise SystemExit("--energy-conditioning needs --extra-data-min-ev (the lowest energy to add)")
    table, n_extra = training_table(featurizer, args.data, args.extra_data_min_ev, args.licenses, args.jobs,
                                    energy_conditioning=args.energy_conditioning)
    pseudo = load_pseudo_labels(args.pseudo, featurizer, args.pseudo_weight, args.pseudo_max, table.keys) \
        if args.pseudo else None
    members, results = [], []
    for k in range(args.members):
        seed = args.seed + k
        torch.manual_seed(seed)  # initial weights too, so a rerun reproduces the shipped file
        member = EIPredictor.new(featurizer, hidden=tuple(args.hidden), dropout=args.dropout,
                                 mass_margin=args.mass_margin, arch=args.arch, n_experts=args.n_experts)
        settings = TrainSettings(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                 weight_decay=args.weight_decay, patience=args.patience,
                                 max_minutes=args.max_minutes, seed=seed, ema=args.ema,
                                 loss=LossSettings(weighted_share=args.weighted_share,
                                                   linear_share=args.linear_share))
        results.append(train(member, table, settings, pseudo=pseudo))
        members.append(member)
        logging.info("member %d (seed %d): best epoch %d, validation loss %.4f", k, seed,
                     results[-1]["best_epoch"], results[-1]["best_val_loss"])
    output = OutputSettings(isotope_envelope=args.isotope_envelope)
    if args.members > 1:
        model = NEIMSEnsemble.from_models([m.model for m in members])
        predictor = EIPredictor(model, featurizer, output)
        result = {"best_epoch": [r["best_epoch"] for r in results],
                  "best_val_loss": sum(r["best_val_loss"] for r in results) / len(results),
                  "minutes": sum(r["minutes"] for r in results), "history": [r["history"] for r in results],
                  "n_train": results[0]["n_train"], "n_validation": results[0]["n_validation"]}
    else:
        predictor, result = members[0], results[0]
        predictor.output = output
    n_params = sum(p.numel() for p in predictor.model.parameters())
    data_name = args.data.name + (f" + {n_extra} train spectra >= {args.extra_data_min_ev:g} eV from "
                                  "massbank_ei_all.msp" if n_extra else "")
    predictor.info = {
        "training_data": f"{data_name} (MassBank EI, release 2025.05.1), train split",
        "licenses": args.licenses or "all (mostly CC BY-NC-SA)",
        "n_spectra": table.n_spectra, "n_compounds": len(table.keys), "n_train": result["n_train"],
        "n_validation": result["n_validation"], "best_epoch": result["best_epoch"],
        "best_val_loss": round(result["best_val_loss"], 5), "n_parameters": n_params,
        "member_val_losses": [round(r["best_val_loss"], 5) for r in results],
        "train_settings": {k: v for k, v in vars(args).items() if k not in ("data", "out", "no_member_folders")},
    }
    readme = README.format(
        max_mz=predictor.model.config.max_mz, radius=featurizer.radius, n_bits=featurizer.n_bits,
        n_desc=featurizer.n_descriptors, hidden=" x ".join(map(str, args.hidden)), dropout=args.dropout,
        margin=args.mass_margin, elements=" ".join(featurizer.allowed_elements), max_mass=featurizer.max_mass,
        n_spectra=table.n_spectra, n_compounds=len(table.keys), n_train=result["n_train"],
        n_val=result["n_validation"], best_epoch=result["best_epoch"], best_val=result["best_val_loss"],
        minutes=result["minutes"])
    v2 = []
    if args.extra:
        v2.append(f"- extra feature blocks: {', '.join(args.extra)} ({featurizer.n_descriptors} descriptors in all)")
    if args.arch != "mlp" or args.n_experts:
        v2.append(f"- body: {args.arch} {args.hidden}" + (f", mixture of {args.n_experts} residual experts"
                                                          if args.n_experts else ""))
    if args.isotope_envelope:
        v2.append(f"- exact isotope envelope of the formula written at m/z M..M+{args.mass_margin} "
                  f"(mode {args.isotope_envelope})")
    if n_extra:
        v2.append(f"- {n_extra} extra TRAIN spectra from massbank_ei_all.msp records outside the nominal set, "
                  f"ionization energy >= {args.extra_data_min_ev:g} eV" + (
                      " (energy-conditioned: each energy group trains through its own scale/shift of the last "
                      "hidden layer; predictions are the 70 eV group)" if args.energy_conditioning
                      else " (new compounds, taken as 70 eV)"))
    if args.members > 1:
        v2.append(f"- ensemble of {args.members} seeds ({args.seed}..{args.seed + args.members - 1}), averaged "
                  "in sqrt space; each spectrum carries `PredictionConfidence` (mean cosine of the members "
                  "to their mean)")
    if v2:
        readme += "\n## v2 options\n" + "\n".join(v2) + "\n\nCommand: `PYTHONPATH=. python " \
            "data_prep/train_predictor.py " + " ".join(sys.argv[1:] if argv is None else argv) + "`\n"
    predictor.save_pretrained(args.out, readme=readme)
    write_json(args.out / "training_history.json", result["history"])
    size = (args.out / "model.safetensors").stat().st_size / 1e6
    print(f"saved {args.out} ({n_params / 1e6:.2f} M parameters, {size:.1f} MB): best epoch "
          f"{result['best_epoch']}, validation loss {result['best_val_loss']:.4f}, {result['minutes']:.1f} min")
    if args.members > 1 and not args.no_member_folders:  # members too, to score each on its own
        for k, member in enumerate(members):
            member.output = output
            member.info = {"member_of": str(args.out), "seed": args.seed + k}
            member.save_pretrained(args.out / "members" / str(k))
    return 0


def combine(args) -> int:
    """Ensemble of already trained predictors (e.g. the same command run with --seed 0, 1, 2)."""
    parts = [EIPredictor.from_pretrained(p) for p in args.ensemble_from]
    first = parts[0]
    for p in parts[1:]:
        if p.featurizer != first.featurizer:
            raise SystemExit("ensemble members must share one featuriser")
    model = NEIMSEnsemble.from_models([p.model for p in parts])
    output = replace(first.output, isotope_envelope=args.isotope_envelope or first.output.isotope_envelope)
    predictor = EIPredictor(model, first.featurizer, output)
    predictor.info = {"ensemble_of": [str(p) for p in args.ensemble_from],
                      "member_identities": [p.identity for p in parts],
                      "member_info": [{k: v for k, v in p.info.items() if k != "identity"} for p in parts]}
    readme = ("# llm4ms EI spectrum predictor: ensemble of " + str(len(parts)) + " NEIMS-style members\n\n"
              "Members (each a folder trained by data_prep/train_predictor.py; see their README):\n"
              + "".join(f"- {p} ({q.identity})\n" for p, q in zip(args.ensemble_from, parts))
              + "\nPrediction = mean of the members in sqrt-intensity space; every spectrum carries "
              "`PredictionConfidence` = mean cosine of the members to that mean (0..1).\n\n"
              "Command: `PYTHONPATH=. python data_prep/train_predictor.py "
              + " ".join(sys.argv[1:]) + "`\n\n" + _member_readme(args.ensemble_from[0]))
    predictor.save_pretrained(args.out, readme=readme)
    print(f"saved ensemble of {len(parts)} at {args.out}")
    return 0


def _member_readme(folder: Path) -> str:
    path = Path(folder) / "README.md"
    return ("## First member's model card\n\n" + path.read_text(encoding="utf-8")) if path.is_file() else ""


if __name__ == "__main__":
    sys.exit(main())
