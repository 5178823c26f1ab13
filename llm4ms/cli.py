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

COMMANDS = ("embed", "merge", "index", "search", "info", "predict", "evaluate", "plot", "serve", "convert")


class HelpFormatter(argparse.HelpFormatter):
    """Help that shows each option's default, unless the help text already says it or there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("%(default)" in text or "default" in text.lower() or not action.option_strings
                or action.default in (None, False, argparse.SUPPRESS)):
            return text
        return text + " (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """Every sub-command parser gets `HelpFormatter` unless it asks for another."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    from llm4ms import __version__

    parser = _Parser(prog="llm4ms", description="Identify compounds from mass spectra with LLM spectrum "
                     "embeddings.")
    parser.add_argument("--version", action="version", version=f"llm4ms {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more, show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"llm4ms.commands.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"llm4ms.commands.{name}":
                continue  # command not built yet
            raise
        module.register(sub)
    return parser


class _Formatter(logging.Formatter):
    """llm4ms's own INFO lines read as plain notes ("llm4ms: ..."); warnings and others keep level and source."""

    def format(self, record: logging.LogRecord) -> str:
        if record.levelno == logging.INFO and record.name.startswith("llm4ms"):
            return f"llm4ms: {record.getMessage()}"
        return f"{record.levelname} {record.name}: {record.getMessage()}" + (
            "\n" + self.formatException(record.exc_info) if record.exc_info else "")


def configure_logging(verbose: bool = False) -> None:
    """llm4ms INFO notes (first-run builds, progress lines in logs) always; other libraries' only with -v."""
    root = logging.getLogger()
    if not root.handlers:  # an embedding program (or pytest) that configured logging keeps its setup
        handler = logging.StreamHandler()
        handler.setFormatter(_Formatter())
        root.addHandler(handler)
        root.setLevel(logging.INFO if verbose else logging.WARNING)
    ours = logging.getLogger("llm4ms")
    if ours.level == logging.NOTSET or ours.level > logging.INFO:
        ours.setLevel(logging.INFO)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    configure_logging(args.verbose)
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
