"""`llm4ms embed`: embed a spectra file into a searchable library folder (resumable)."""
from __future__ import annotations

import argparse
import sys

from llm4ms.index import INDEX_KINDS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("embed", help="embed a spectra file into a library folder (resumable) and index it",
                       description="Embed every spectrum of a file into LIB_DIR: embeddings, metadata, peaks "
                                   "and a FAISS index. Rerunning an interrupted command continues where it stopped.")
    p.add_argument("--spectra", required=True, help="MSP, MGF, CSV/TXT or JCAMP-DX file (optionally .gz)")
    p.add_argument("--out", required=True, help="library folder to write")
    p.add_argument("--model", help="model folder or Hub id (default: the bundled default model)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--chunk-size", type=int, default=1024, help="spectra per resumable shard")
    p.add_argument("--index", default="auto", choices=INDEX_KINDS, help="index kind built at the end")
    p.add_argument("--dtype", default="float32", choices=("float32", "float16"), help="stored embedding type")
    p.add_argument("--skip-invalid", action="store_true", help="skip unreadable records (counted) instead of stopping")
    p.add_argument("--overwrite", action="store_true", help="discard an existing library folder")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llm4ms.defaults import load_encoder
    from llm4ms.search import Library

    encoder = load_encoder(args.model)
    library = Library.build(args.spectra, args.out, encoder, batch_size=args.batch_size, index=args.index,
                            dtype=args.dtype, chunk_size=args.chunk_size, skip_invalid=args.skip_invalid,
                            overwrite=args.overwrite, show_progress=not args.no_progress)
    m = library.manifest
    notes = []
    if m.skipped:
        notes.append(f"{m.skipped} invalid records skipped")
    if m.empty:
        notes.append(f"{m.empty} spectra without peaks not embedded")
    kind = (m.index or {}).get("spec", {}).get("kind", "none")
    extra = f" ({'; '.join(notes)})" if notes else ""
    print(f"library {args.out}: {m.count} spectra embedded, dim {m.model['dim']}, index {kind}{extra}",
          file=sys.stderr)
    return 0
