"""Command-line entry point: argument parsing only; every command calls the library.

Each sub-command lives in `llm4ms.commands.<name>` with `register(subparsers)` and `run(args) -> int`.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Optional, Sequence

from llm4ms.errors import Llm4msError

COMMANDS = ("embed", "merge", "index", "search", "info", "predict", "evaluate", "plot", "serve", "export")


def build_parser() -> argparse.ArgumentParser:
    from llm4ms import __version__

    parser = argparse.ArgumentParser(prog="llm4ms", description="Identify compounds from mass spectra "
                                     "with LLM spectrum embeddings.")
    parser.add_argument("--version", action="version", version=f"llm4ms {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more, show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"llm4ms.commands.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"llm4ms.commands.{name}":
                continue  # command not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no "Loading weights" bars; ours stay
    try:
        return int(args.func(args) or 0)
    except Llm4msError as err:
        if args.verbose:
            raise
        print(f"llm4ms {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"llm4ms {args.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
