"""`llm4ms convert`: turn a format-1 model folder (llm4ms <= 0.3) into a sentence-transformers model folder."""
from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert an older (format-1) model folder to the current format",
                       description="Merge the adapters of a format-1 model folder (causal-LM folder + adapter/) and "
                                   "write a current model folder, which `sentence_transformers.SentenceTransformer` "
                                   "also loads. Same vectors for the same spectra; libraries embedded with the old "
                                   "folder must be re-embedded.")
    p.add_argument("--model", required=True, help="the format-1 model folder")
    p.add_argument("--out", required=True, help="folder to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llm4ms.model.convert import convert_format1

    encoder = convert_format1(args.model, args.out)
    print(f"model converted to {args.out} (identity {encoder.identity[:16]})", file=sys.stderr)
    return 0
