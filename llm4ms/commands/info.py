"""`llm4ms info`: describe a library folder or a model folder (readable; `--json` for machines)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="describe a library or model folder",
                       description="A short readable summary of a library folder (from `llm4ms embed`) or a model "
                                   "folder; --json prints everything recorded, as JSON.")
    p.add_argument("path", nargs="?", help="library or model folder (default: the bundled model)")
    p.add_argument("--json", action="store_true", help="print the full record as JSON instead")
    p.add_argument("--verify", action="store_true",
                   help="library: also check the full sha256 of every file recorded at build time (slow when big)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llm4ms.defaults import default_model_path
    from llm4ms.errors import ConfigError
    from llm4ms.library import Library

    path = Path(args.path) if args.path else default_model_path()
    if path is None:
        raise ConfigError("give a library or model folder")
    if (path / "manifest.json").exists():
        if args.verify:
            from llm4ms.library import verify_library

            problems = verify_library(path)
            if problems:
                raise ConfigError("; ".join(problems))
        info = Library.load(path).info()
        print(json.dumps(info, indent=2, default=str) if args.json else library_summary(info))
        if args.verify:
            print("verified: every file matches the checksums recorded at build time")
    elif (path / "llm4ms_config.json").exists():
        text = (path / "llm4ms_config.json").read_text(encoding="utf-8")
        if args.json:
            print(text.rstrip("\n"))
        else:
            try:
                config = json.loads(text)
            except json.JSONDecodeError as err:
                raise ConfigError(f"{path / 'llm4ms_config.json'}: not valid JSON ({err.msg}, line {err.lineno})")
            print(model_summary(path, config))
    else:
        raise ConfigError(f"{path}: neither an llm4ms library (manifest.json) nor a model (llm4ms_config.json)")
    return 0


def _rows(rows: list[tuple[str, Any]]) -> str:
    rows = [(k, str(v)) for k, v in rows if v not in (None, "")]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def library_summary(info: dict) -> str:
    model = info.get("model") or {}
    index = info.get("index") or {}
    spec = index.get("spec") or {}
    count = info.get("spectra") or 0
    notes = [f"{info.get('with_structure', 0):,} with an InChIKey"]
    if info.get("skipped_invalid"):
        notes.append(f"{info['skipped_invalid']:,} invalid records skipped")
    if info.get("empty_not_embedded"):
        notes.append(f"{info['empty_not_embedded']:,} without peaks not embedded")
    if index:
        kind = spec.get("kind", "?")
        detail = f", nprobe {spec['nprobe']}" if kind.startswith("ivf") and spec.get("nprobe") else ""
        index_text = f"{kind}{detail} over {index.get('ntotal', count):,} spectra ({index.get('file')})"
    else:
        index_text = "none (build one with: llm4ms index LIB_DIR)"
    source = info.get("source") or {}
    rows = [
        ("library", info.get("folder")),
        ("spectra", f"{count:,} ({'; '.join(notes)})"),
        ("model", f"{model.get('reference') or '(not recorded)'} (identity {str(model.get('identity'))[:12]}, "
                  f"dim {model.get('dim')})"),
        ("index", index_text),
        ("embeddings", info.get("dtype")),
        ("source", source.get("path") if isinstance(source, dict) else source),
        ("created", f"{info.get('created')} by llm4ms {info.get('llm4ms_version')}"),
    ]
    return _rows(rows) + "\n(all recorded fields: llm4ms info LIB_DIR --json)"


def _textualizer(t: dict) -> str:
    if not t:
        return ""
    parts = [f"style {t.get('style')}", f"top {t.get('top_n')} peaks",
             f"intensity {t.get('intensity')} ({t.get('n_bins')} bins)" if t.get("intensity") else None,
             f"{t.get('n_losses')} neutral losses" if t.get("n_losses") else None]
    return ", ".join(p for p in parts if p)


def model_summary(path: Path, config: dict) -> str:
    merged = config.get("merged_adapters") or 0
    merged = len(merged) if isinstance(merged, list) else int(merged)
    training = config.get("training") or {}
    stages = [s.get("stage") for s in training.get("stages", []) if isinstance(s, dict)] \
        if isinstance(training, dict) else []
    rows = [
        ("model", path),
        ("base", config.get("base_model")),
        ("identity", str(config.get("identity") or "")[:12]),
        ("embeddings", f"dim {config.get('dim')}, {config.get('pooling')} pooling, at most "
                       f"{config.get('max_length')} tokens"),
        ("adapters", f"{merged} LoRA adapter(s) merged" if merged else ("LoRA" if config.get("lora") else "none")),
        ("textualizer", _textualizer(config.get("textualizer") or {})),
        ("training", " -> ".join(str(s) for s in stages) if stages else
         (training.get("model") if isinstance(training, dict) else training)),
    ]
    out = _rows(rows)
    scores = config.get("scores") or {}
    if scores:  # the commands that made them are in --json
        out += "\nscores\n" + "\n".join(f"  {name}: {_without_commands(text)}" for name, text in scores.items())
    return out + "\n(all recorded fields: llm4ms info MODEL_DIR --json)"


def _without_commands(text: Any) -> str:
    import re

    text = re.sub(r"\s*\(`[^`]*`\)", "", str(text))
    return re.sub(r";?\s*`[^`]*`", "", text).strip()
