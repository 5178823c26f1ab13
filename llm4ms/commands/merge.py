"""`llm4ms merge`: join the shard folders of a multi-process `llm4ms embed --shard` into one library."""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from llm4ms.library.index import INDEX_KINDS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("merge", help="join shard-I-of-N folders of a distributed embed into one library",
                       description="Merge LIB_DIR/shard-*-of-* (from `llm4ms embed --shard`) into LIB_DIR, in "
                                   "input order, and build its index.")
    p.add_argument("library", help="the --out folder given to every shard")
    p.add_argument("--index", default="auto", choices=INDEX_KINDS, help="index kind built after merging")
    p.add_argument("--keep-shards", action="store_true", help="keep the shard folders after merging")
    p.add_argument("--overwrite", action="store_true",
                   help="discard a merged library already in the folder and merge again")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llm4ms.errors import ConfigError
    from llm4ms.library import Library

    root = Path(args.library)
    shards = sorted(root.glob("shard-*-of-*"))
    if not shards:
        raise ConfigError(f"{root}: no shard-I-of-N folders to merge (embed with --shard first)")
    # --overwrite discards a merged library's own files (under the folder's writer lock), never the shards;
    # without it an interrupted merge continues where it stopped
    library = Library.merge(shards, root, index=args.index, overwrite=args.overwrite)
    if not args.keep_shards:
        for folder in shards:
            shutil.rmtree(folder)
    print(f"merged {len(shards)} shards into {root}: {len(library)} spectra", file=sys.stderr)
    return 0
