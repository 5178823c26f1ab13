"""MSP read speed: llm4ms.io.read_spectra vs matchms.importing.load_from_msp on the same file.

Both generators are consumed fully; the best of N runs is kept (other jobs share the CPUs).
Usage: PYTHONPATH=. python benchmarks/read_speed.py [--path FILE] [--repeats 3]
Writes benchmarks/results/read_speed.json.
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path
from typing import Callable, Iterable

from llm4ms.data.shared import portable_path, shared_path
from llm4ms.errors import ConfigError
from llm4ms.utils import write_json

DEFAULT = ("massbank_ei", "massbank_ei_all.msp")  # inside the shared data folder (llm4ms.data.shared)


def best_of(load: Callable[[], Iterable], repeats: int) -> tuple[int, float]:
    best, count = float("inf"), 0
    for _ in range(repeats):
        start = time.perf_counter()
        count = sum(1 for _ in load())
        best = min(best, time.perf_counter() - start)
    return count, best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, default=None,
                        help="MSP file (default: massbank_ei/massbank_ei_all.msp in the shared data folder)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "read_speed.json")
    args = parser.parse_args()
    try:
        path = args.path or shared_path(*DEFAULT)
    except ConfigError as err:
        raise SystemExit(f"read_speed: {err}") from None

    from llm4ms.io import read_spectra

    rows = []
    n, seconds = best_of(lambda: read_spectra(path), args.repeats)
    rows.append({"reader": "llm4ms.io.read_spectra", "records": n, "seconds": seconds})
    try:
        import logging

        import matchms
        from matchms.importing import load_from_msp

        logging.getLogger("matchms").setLevel(logging.ERROR)
        n, seconds = best_of(lambda: load_from_msp(str(path), metadata_harmonization=False),
                             args.repeats)
        rows.append({"reader": f"matchms {matchms.__version__} load_from_msp", "records": n,
                     "seconds": seconds})
    except ImportError:
        print("matchms not installed: only our reader measured")

    ours = rows[0]["seconds"]
    print(f"file: {path} ({path.stat().st_size / 1e6:.1f} MB), best of {args.repeats}")
    print(f"{'reader':<38} {'records':>8} {'seconds':>8} {'records/s':>10} {'time ratio':>10}")
    for row in rows:
        row["records_per_s"] = row["records"] / row["seconds"]
        row["ratio_to_llm4ms"] = row["seconds"] / ours
        print(f"{row['reader']:<38} {row['records']:>8} {row['seconds']:>8.2f} "
              f"{row['records_per_s']:>10.0f} {row['ratio_to_llm4ms']:>10.2f}")
    write_json(args.out, {"file": portable_path(path), "repeats": args.repeats, "python": platform.python_version(),
                          "cpu_count": os.cpu_count(), "rows": rows,
                          "note": "matchms run with metadata_harmonization=False (its fastest setting); "
                                  "ours includes metadata normalisation"})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
