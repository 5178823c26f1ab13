"""Embedding throughput (spectra/s) of tiny encoders: sizes x dtype x batch size, on CPU threads.

    PYTHONPATH=. python benchmarks/embed_speed.py [--n 256] [--threads 2] [--preset llm4ms-v2]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from tokens_per_spectrum import read_msp_light  # noqa: E402

from llm4ms.model import SpectrumEncoder  # noqa: E402
from llm4ms.model.tiny import build_tiny_model  # noqa: E402
from llm4ms.text import Textualizer  # noqa: E402
from llm4ms.utils import write_json  # noqa: E402
from llm4ms.data.shared import shared_path  # noqa: E402

DATA = ("massbank_ei", "massbank_ei_nominal.msp")  # inside the shared data folder, looked up when run
SIZES = ((64, 2, 4), (128, 2, 4), (256, 4, 4))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="spectra per measurement")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--preset", default="llm4ms-v2")
    parser.add_argument("--batch-sizes", default="32,128")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    textualizer = Textualizer.from_preset(args.preset)
    spectra = list(read_msp_light(str(shared_path(*DATA)), limit=args.n + 1000))
    train_texts = [textualizer(s) for s in spectra[args.n:]]
    queries = spectra[: args.n]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for hidden, layers, heads in SIZES:
            folder = build_tiny_model(Path(tmp) / f"h{hidden}", train_texts, hidden_size=hidden,
                                      num_layers=layers, heads=heads, vocab_size=1000)
            for dtype in ("float32", "bfloat16"):
                encoder = SpectrumEncoder.from_base(folder, textualizer=textualizer, torch_dtype=dtype)
                params = sum(p.numel() for p in encoder.model.parameters())
                for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
                    encoder.encode(queries[:batch_size], batch_size=batch_size)  # warm-up
                    start = time.perf_counter()
                    encoder.encode(queries, batch_size=batch_size, show_progress=False)
                    seconds = time.perf_counter() - start
                    rows.append({"hidden": hidden, "layers": layers, "params_m": params / 1e6, "dtype": dtype,
                                 "batch_size": batch_size, "spectra_per_s": args.n / seconds})
                    print(f"h{hidden}/{layers}L {params / 1e6:5.2f}M {dtype:>9} bs{batch_size:<4}"
                          f" {args.n / seconds:8.0f} spectra/s", flush=True)
    write_json(Path(__file__).parent / "results" / "embed_speed.json",
               {"n": args.n, "threads": args.threads, "preset": args.preset, "torch": torch.__version__,
                "rows": rows})


if __name__ == "__main__":
    main()
