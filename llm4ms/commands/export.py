"""`llm4ms export`: write a model as a plain sentence-transformers folder (for tools that speak ST)."""
from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a model as a sentence-transformers folder",
                       description="Merge adapters and write a folder that "
                                   "`sentence_transformers.SentenceTransformer(OUT)` loads (same embeddings for "
                                   "the same spectrum texts). Texts must be made with the model's textualizer.")
    p.add_argument("--model", help="model folder or Hub id (default: the bundled default model)")
    p.add_argument("--out", required=True, help="folder to write")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llm4ms.defaults import load_encoder
    from llm4ms.model.st_export import export_sentence_transformer

    encoder = load_encoder(args.model)
    export_sentence_transformer(encoder, args.out)
    preset = encoder.textualizer.preset_name or "custom"
    print(f"sentence-transformers model written to {args.out} (texts: textualizer preset {preset!r})",
          file=sys.stderr)
    return 0
