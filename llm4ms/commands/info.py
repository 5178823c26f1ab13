"""`llm4ms info`: describe a library folder or a model folder."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="describe a library or model folder")
    p.add_argument("path", nargs="?", help="library or model folder (default: the bundled model)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llm4ms.defaults import default_model_path
    from llm4ms.errors import ConfigError
    from llm4ms.search import Library

    path = Path(args.path) if args.path else default_model_path()
    if path is None:
        raise ConfigError("give a library or model folder")
    if (path / "manifest.json").exists():
        print(json.dumps(Library.load(path).info(), indent=2, default=str))
    elif (path / "llm4ms_config.json").exists():
        print((path / "llm4ms_config.json").read_text())
    else:
        raise ConfigError(f"{path}: neither an llm4ms library (manifest.json) nor a model (llm4ms_config.json)")
    return 0
