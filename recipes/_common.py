"""What the three recipes share: config parsing (JSON + flag overrides), data loading, error handling."""
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
    try:
        parsed, unknown = parser.parse_known_args(args=argv)
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            raise ConfigError("bad arguments (see the message above)") from None
        raise
    if unknown:
        raise ConfigError(f"unknown arguments: {' '.join(unknown[:6])}")
    return parser.parse_args_into_dataclasses(args=argv)


def run(main: Callable[[Optional[Sequence[str]]], int], argv: Optional[Sequence[str]] = None) -> int:
    """Run a recipe; a `Llm4msError` becomes one line on stderr and exit code 2."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("transformers", "accelerate", "peft", "datasets", "httpx"):
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


def evaluator(encoder, data_args, training_args):
    from llm4ms.training.stages import retrieval_evaluator

    queries, library = validation_spectra(data_args)
    if not queries:
        return None
    return retrieval_evaluator(encoder, queries, library, batch_size=training_args.eval_batch_size)


def prepare_encoder(model_args, training_args, texts_for_tokenizer: Callable[[], list]):
    """Resolve tiny/smollm2 names, then load the encoder (merging a previous stage's adapter)."""
    from llm4ms.training.stages import load_encoder, resolve_base

    name = model_args.model_name_or_path
    needs_texts = name.startswith("tiny:")
    base = resolve_base(name, texts_for_tokenizer() if needs_texts else [], Path(training_args.output_dir) / "base",
                        seed=training_args.seed)
    if not name.startswith(("tiny:", "smollm2")) and not Path(base).exists() and os.environ.get("HF_HUB_OFFLINE") == "1":
        raise ConfigError(f"model_name_or_path: {base} is not a local folder and HF_HUB_OFFLINE=1")
    return load_encoder(base, textualizer=model_args.textualizer, pooling=model_args.pooling,
                        max_length=model_args.max_length, torch_dtype=model_args.torch_dtype,
                        load_in_4bit=model_args.load_in_4bit)


def encoder_and_texts(model_args, data_args, training_args) -> tuple:
    """The stage's encoder and its train texts (MNTP and SimCSE both train on spectrum texts)."""
    from llm4ms.text import Textualizer

    spectra = train_spectra(data_args)
    first_texts = Textualizer.from_preset(model_args.textualizer or "llm4ms-v2")
    encoder = prepare_encoder(model_args, training_args, lambda: [first_texts(s) for s in spectra])
    return encoder, encoder.texts(spectra)


def summary(stage: str, result, final: Path) -> None:
    validation = result.validation
    parts = [f"{stage}: {result.steps} steps (resumed at {result.resumed_from}), final loss {result.final_loss:.4f}"]
    if validation.get("after"):
        parts.append(f"validation before {validation.get('before', {})} after {validation['after']}")
    parts.append(f"model -> {final}")
    print("; ".join(parts))
