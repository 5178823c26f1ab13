"""Tokens per spectrum for each textualizer preset, with a BPE tokenizer trained on that preset's texts.

Trains on 80 % of MassBank EI (nominal) and counts tokens on the other 20 %, so the numbers are for
unseen spectra. Optionally also counts with the SmolLM2 tokenizer (digits split one by one).

    PYTHONPATH=. python benchmarks/tokens_per_spectrum.py [--limit 3000] [--vocab 1000] [--smollm2]
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Iterator

import numpy as np

from llm4ms.model.tiny import train_spectrum_tokenizer
from llm4ms.spectrum import Spectrum
from llm4ms.text import PRESETS
from llm4ms.utils import write_json
from llm4ms.data.shared import portable_path, shared_path

DATA = ("massbank_ei", "massbank_ei_nominal.msp")  # inside the shared data folder, looked up when run


def read_msp_light(path: str, limit: int | None = None) -> Iterator[Spectrum]:
    """A tiny MSP reader for benchmarks only (the real reader is llm4ms.io): name, exact mass, peaks."""
    meta: dict = {}
    peaks: list[tuple[float, float]] = []
    count = 0
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                if peaks:
                    mz, inten = zip(*peaks)
                    yield Spectrum(np.array(mz), np.array(inten), meta)
                    count += 1
                    if limit and count >= limit:
                        return
                meta, peaks = {}, []
            elif ":" in line and not line[0].isdigit():
                key, value = line.split(":", 1)
                key = key.strip().lower()
                if key == "exactmass":
                    meta["exact_mass"] = float(value)
                elif key == "name":
                    meta["name"] = value.strip()
            else:
                parts = line.replace(",", " ").split()
                if len(parts) >= 2:
                    peaks.append((float(parts[0]), float(parts[1])))
    if peaks:
        mz, inten = zip(*peaks)
        yield Spectrum(np.array(mz), np.array(inten), meta)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--msp", default=None,
                        help="MSP file (default: massbank_ei/massbank_ei_nominal.msp in the shared data folder)")
    parser.add_argument("--limit", type=int, default=3000)
    parser.add_argument("--vocab", type=int, default=1000)
    parser.add_argument("--smollm2", action="store_true", help="also count with the SmolLM2 tokenizer")
    args = parser.parse_args()
    args.msp = args.msp or str(shared_path(*DATA))
    spectra = list(read_msp_light(args.msp, limit=args.limit))
    rng = np.random.default_rng(0)
    order = rng.permutation(len(spectra))
    cut = int(0.8 * len(spectra))
    train, test = [spectra[i] for i in order[:cut]], [spectra[i] for i in order[cut:]]
    smol = None
    if args.smollm2:
        from llm4ms.model.smollm2 import load_smollm2_gguf

        _, smol = load_smollm2_gguf()
    rows = []
    for name, textualizer in PRESETS.items():
        tokenizer = train_spectrum_tokenizer([textualizer(s) for s in train], vocab_size=args.vocab)
        texts = [textualizer(s) for s in test]
        counts = np.array([len(ids) for ids in tokenizer(texts)["input_ids"]])
        row = {"preset": name, "chars_mean": float(np.mean([len(t) for t in texts])),
               "tokens_mean": float(counts.mean()), "tokens_p95": float(np.percentile(counts, 95)),
               "tokens_max": int(counts.max()), "n_test": len(texts)}
        if smol is not None:
            smol_counts = np.array([len(ids) for ids in smol(texts)["input_ids"]])
            row["smollm2_tokens_mean"] = float(smol_counts.mean())
            row["smollm2_tokens_p95"] = float(np.percentile(smol_counts, 95))
        rows.append(row)
    header = f"{'preset':<14}{'chars':>8}{'tok mean':>10}{'tok p95':>9}{'tok max':>9}"
    header += f"{'smol mean':>11}{'smol p95':>10}" if smol is not None else ""
    print(f"{len(train)} train / {len(test)} test spectra, BPE vocab {args.vocab}")
    print(header)
    for r in rows:
        line = f"{r['preset']:<14}{r['chars_mean']:>8.0f}{r['tokens_mean']:>10.1f}{r['tokens_p95']:>9.0f}{r['tokens_max']:>9d}"
        if smol is not None:
            line += f"{r['smollm2_tokens_mean']:>11.1f}{r['smollm2_tokens_p95']:>10.0f}"
        print(line)
    write_json(Path(__file__).parent / "results" / "tokens_per_spectrum.json",
               {"msp": portable_path(args.msp), "limit": args.limit, "vocab": args.vocab, "rows": rows})


if __name__ == "__main__":
    main()
