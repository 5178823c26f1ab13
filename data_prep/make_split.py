"""Write the compound split (train / validation / test by InChIKey first block) as an auditable TSV.

The split itself is a pure function of the key (`llm4ms.data.split.compound_split`); this file only
writes it down for the compounds of the shared EI libraries, so reviewers can check that no test
compound was trained on. Deterministic: rerunning gives the same bytes.

    PYTHONPATH=. python data_prep/make_split.py [--out data_prep/splits/massbank_ei_nominal_split.tsv]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_INPUTS = (("massbank_ei", "massbank_ei_nominal.msp"), ("pnnl_gcms", "PNNLMetV20191015_clean.msp"))
DEFAULT_OUT = Path(__file__).resolve().parent / "splits" / "massbank_ei_nominal_split.tsv"


def collect_keys(paths) -> set[str]:
    """InChIKey first blocks of every spectrum that has one."""
    from llm4ms.io import read_spectra

    keys: set[str] = set()
    for path in paths:
        keys.update(s.inchikey14 for s in read_spectra(path, skip_invalid=True) if s.inchikey14)
    return keys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="*", type=Path,
                        help="MSP files (default: " + ", ".join("/".join(p) for p in DEFAULT_INPUTS)
                             + " in the shared data folder)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="TSV to write")
    args = parser.parse_args(argv)
    from llm4ms.data.shared import shared_path
    from llm4ms.data.split import write_split

    inputs = args.inputs or [shared_path(*parts) for parts in DEFAULT_INPUTS]
    counts = write_split(collect_keys(inputs), args.out)
    print(f"{args.out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
