"""What the three recipes share: config parsing (JSON + flag overrides), data loading, saving, error handling."""
from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

try:  # run from a clone without `pip install -e .`
    import llm4ms  # noqa: F401
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm4ms.errors import ConfigError, Llm4msError

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def read_json_config(path: Path) -> dict:
    """A recipe config file as a dict, or one clear line saying why not."""
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: line {err.lineno}: invalid JSON ({err.msg})") from err
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: a config must be a JSON object")
    return config


def json_to_flags(path: Path, types: tuple = ()) -> list[str]:
    """A JSON config as command-line flags (``{"max_steps": 5}`` -> ``--max_steps 5``); keys ``_*`` are notes.

    With the argument dataclasses `types`, keys that none of them declares are refused in one line.
    """
    import dataclasses

    config = read_json_config(path)
    if types:
        known = {f.name for t in types for f in dataclasses.fields(t)}
        unknown = sorted(k for k in config if k not in known and not k.startswith("_"))
        if unknown:
            raise ConfigError(f"{path}: unknown keys {', '.join(unknown)}")
    flags: list[str] = []
    for key, value in config.items():
        if key.startswith("_") or value is None:
            continue
        values = value if isinstance(value, list) else [value]
        flags += [f"--{key}", *(json.dumps(v) if isinstance(v, dict) else str(v) for v in values)]
    return flags


def parse_config(argv: Optional[Sequence[str]], types: tuple) -> tuple:
    """``[config.json] [--flag value ...]`` parsed by `HfArgumentParser`: the JSON's flags come first, so the
    command line overrides them (argparse keeps the last value); unknown keys are refused by the parser."""
    from transformers import HfArgumentParser

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].endswith(".json"):
        argv = json_to_flags(Path(argv.pop(0)), types) + argv
    parser = HfArgumentParser(types)

    def refuse(message: str):
        raise ConfigError(message)

    parser.error = refuse  # argparse would print its whole usage; one line is enough
    parsed, unknown = parser.parse_known_args(args=argv)
    if unknown:
        raise ConfigError(f"unknown arguments: {' '.join(unknown[:6])}")
    try:
        return parser.parse_args_into_dataclasses(args=argv)
    except ValueError as err:  # the Trainer's own argument checks
        if isinstance(err, Llm4msError):
            raise
        raise ConfigError(str(err).strip().splitlines()[0]) from err


def run(main: Callable[[Optional[Sequence[str]]], int], argv: Optional[Sequence[str]] = None) -> int:
    """Run a recipe; a `Llm4msError` becomes one line on stderr and exit code 2."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("transformers", "accelerate", "peft", "datasets", "httpx", "sentence_transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(main(argv) or 0)
    except Llm4msError as err:
        print(f"{Path(sys.argv[0]).name}: error: {err}", file=sys.stderr)
        return 2


def validation_spectra(data_args) -> tuple[list, list]:
    """Validation queries and library as `Spectrum` lists (empty when not configured)."""
    from llm4ms.training.data import load_spectra

    if not data_args.validation_queries:
        return [], []
    queries = load_spectra(data_args.validation_queries)
    if data_args.max_validation_queries:
        queries = queries[:data_args.max_validation_queries]
    return queries, load_spectra(data_args.validation_library)


def train_spectra(data_args) -> list:
    from llm4ms.training.data import load_spectra

    spectra = load_spectra(data_args.train_file)
    return spectra[:data_args.max_train_samples] if data_args.max_train_samples else spectra


def evaluator(data_args, textualizer, batch_size: int):
    """sentence-transformers' IR evaluator over the validation search task, or None."""
    from llm4ms.training.contrastive import recall_evaluator

    queries, library = validation_spectra(data_args)
    return recall_evaluator(queries, library, textualizer, batch_size=batch_size) if queries else None


def already_trained(output_dir: str, data_args) -> bool:
    from llm4ms.model.encoder import is_model_folder

    final = Path(output_dir) / "final"
    if is_model_folder(final) and not data_args.retrain:
        print(f"{final} exists; skipping (pass --retrain true to train again)")
        return True
    return False


def finish(encoder, training_args, results: dict) -> Path:
    """Save ``output_dir/final`` (the model folder) and ``output_dir/results.json`` and print one summary line,
    on the main process only (under torchrun / accelerate every process reaches this point)."""
    from llm4ms.utils import write_json

    output_dir = training_args.output_dir
    final = Path(output_dir) / "final"
    if not training_args.should_save:
        return final
    final = encoder.save_pretrained(final)
    write_json(Path(output_dir) / "results.json", {**results, "final_dir": str(final)})
    print(f"{results['stage']}: {results['steps']} steps, final loss {results.get('final_loss')}, validation "
          f"{results.get('validation_before', {})} -> {results.get('validation_after', {})}; model in {final}")
    print(json.dumps({"validation_after": results.get("validation_after", {})}))
    return final
