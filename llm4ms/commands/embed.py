"""`llm4ms embed`: embed a spectra file into a searchable library folder (resumable)."""
from __future__ import annotations

import argparse
import sys

from llm4ms.library.index import INDEX_KINDS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("embed", help="embed a spectra file into a library folder (resumable) and index it",
                       description="Embed every spectrum of a file into LIB_DIR: embeddings, metadata, peaks "
                                   "and a FAISS index. Rerunning an interrupted command continues where it stopped "
                                   "(and rebuilds a missing or damaged index); a second command writing the same "
                                   "folder at once is refused.")
    p.add_argument("--spectra", required=True, help="MSP, MGF, CSV/TXT or JCAMP-DX file (optionally .gz)")
    p.add_argument("--out", required=True, help="library folder to write")
    p.add_argument("--model", help="model folder, Hub id, or a bundled model: ei (the default) or msms")
    p.add_argument("--batch-size", type=int, default=64, help="spectra per forward pass")
    p.add_argument("--chunk-size", type=int, default=1024, help="spectra per resumable shard")
    p.add_argument("--index", default="auto", choices=INDEX_KINDS, help="index kind built at the end")
    p.add_argument("--dtype", default="float32", choices=("float32", "float16"), help="stored embedding type")
    p.add_argument("--skip-invalid", action="store_true", help="skip unreadable records (counted) instead of stopping")
    p.add_argument("--overwrite", action="store_true",
                   help="discard the library files already in the folder and start again")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")
    p.add_argument("--no-prepare", action="store_true",
                   help="do not keep what fast searches read beside the library (the candidates' structure "
                        "fingerprints above 1,000 spectra, the classic score's matrix above 300,000; `llm4ms "
                        "index` keeps them later): each search then computes them, slower, same hits")
    p.add_argument("--shard", help="embed one shard of a multi-process build: I/N (0-based), or 'auto' to take "
                                   "RANK/WORLD_SIZE from `accelerate launch`/torchrun; writes OUT/shard-I-of-N, "
                                   "joined afterwards by `llm4ms merge OUT`")
    p.set_defaults(func=run)


def parse_shard(value: str | None) -> tuple[int, int] | None:
    """'2/4' -> (2, 4); 'auto' -> from the launcher's RANK / WORLD_SIZE (None for a single process)."""
    import os

    from llm4ms.errors import ConfigError

    if value is None:
        return None
    if value == "auto":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        return (int(os.environ.get("RANK", "0")), world) if world > 1 else None
    try:
        index, count = (int(x) for x in value.split("/"))
    except ValueError as err:
        raise ConfigError(f"--shard must look like I/N (e.g. 0/4) or 'auto', not {value!r}") from err
    if not 0 <= index < count:
        raise ConfigError(f"--shard {value}: need 0 <= I < N")
    return index, count


def shard_folder(out: str, shard: tuple[int, int]) -> str:
    import os

    return os.path.join(out, f"shard-{shard[0]:03d}-of-{shard[1]:03d}")


def process_device() -> str | None:
    """One GPU per launched process (LOCAL_RANK) when CUDA is there; None lets the encoder choose."""
    import os

    import torch

    if torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        return f"cuda:{int(os.environ['LOCAL_RANK'])}"
    return None


def run(args: argparse.Namespace) -> int:
    from llm4ms.defaults import load_encoder
    from llm4ms.library import Library

    shard = parse_shard(args.shard)
    out = shard_folder(args.out, shard) if shard else args.out
    encoder = load_encoder(args.model, device=process_device())
    library = Library.build(args.spectra, out, encoder, batch_size=args.batch_size, index=args.index,
                            dtype=args.dtype, chunk_size=args.chunk_size, skip_invalid=args.skip_invalid,
                            overwrite=args.overwrite, show_progress=not args.no_progress, shard=shard)
    m = library.manifest
    if shard:
        print(f"shard {shard[0]}/{shard[1]} -> {out}: {m.count} spectra embedded; when every shard is done, "
              f"run: llm4ms merge {args.out}", file=sys.stderr)
        return 0
    notes = []
    if m.skipped:
        notes.append(f"{m.skipped} invalid records skipped")
    if m.empty:
        notes.append(f"{m.empty} spectra without peaks not embedded")
    kind = (m.index or {}).get("spec", {}).get("kind", "none")
    extra = f" ({'; '.join(notes)})" if notes else ""
    print(f"library {args.out}: {m.count} spectra embedded, dim {m.model['dim']}, index {kind}{extra}",
          file=sys.stderr)
    if not args.no_prepare:
        built = library.prepare_search(encoder, show_progress=not args.no_progress)
        if built:
            print(f"kept beside it for searches: {' and '.join(built)}", file=sys.stderr)
    return 0
