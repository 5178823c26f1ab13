"""Convert a format-1 model folder (llm4ms <= 0.3: causal-LM folder + ``adapter/``) into today's format.

Format 1 saved the causal LM (or only the name of its base, ``base_weights: "referenced"``), a peft adapter
in ``adapter/``, the tokenizer and ``llm4ms_config.json`` (textualizer, pooling, max_length). The converted
folder is a sentence-transformers folder with the adapter merged and the same pooling, so it embeds the same
texts to the same vectors (up to float rounding); its identity is new, so libraries embedded with the old
folder are re-embedded (`llm4ms embed`) before they are searched with the new one.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from llm4ms.errors import ConfigError
from llm4ms.model.bidirectional import make_bidirectional
from llm4ms.model.encoder import CONFIG_NAME, SpectrumEncoder, is_model_folder
from llm4ms.model.weights import merge_lora_in_place, resolve_dtype

ADAPTER_DIR = "adapter"


def is_format1_folder(folder: str | Path) -> bool:
    path = Path(folder) / CONFIG_NAME
    if not path.is_file() or is_model_folder(folder):
        return False
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("format_version") == 1
    except (OSError, ValueError):
        return False


def convert_format1(folder: str | Path, out_dir: str | Path) -> SpectrumEncoder:
    """Merge a format-1 folder's adapters into its causal LM and write it as a model folder at `out_dir`."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(folder)
    if not is_format1_folder(folder):
        raise ConfigError(f"{folder}: not a format-1 llm4ms model folder (llm4ms_config.json with format_version 1)")
    config = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
    dtype = resolve_dtype(config.get("torch_dtype"))
    try:
        if config.get("base_weights") == "included":
            model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype)
        else:
            gguf = {"gguf_file": config["gguf_file"]} if config.get("gguf_file") else {}
            model = AutoModelForCausalLM.from_pretrained(config["base_model"], dtype=dtype, **gguf)
            for adapter in config.get("merged_adapters", []):
                model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
        if (folder / ADAPTER_DIR).is_dir():
            model = merge_lora_in_place(PeftModel.from_pretrained(model, str(folder / ADAPTER_DIR)))
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    except (OSError, ValueError, KeyError) as err:
        raise ConfigError(f"{folder}: cannot read the format-1 model ({str(err).splitlines()[0]})") from err
    make_bidirectional(model)
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.padding_side = "right"  # format 1 pooled position-aware; right padding keeps positions the same
        tokenizer.save_pretrained(tmp)
        encoder = SpectrumEncoder.from_base(tmp, textualizer=config["textualizer"], pooling=config["pooling"],
                                            max_length=int(config["max_length"]), torch_dtype=dtype, device="cpu")
        encoder.config.update({key: config[key] for key in ("training", "scores", "ranking", "license")
                               if key in config})
        encoder.config["base_model"] = config.get("base_model")
        encoder.config["converted_from"] = {"format_version": 1, "identity": config.get("identity")}
        encoder.save_pretrained(out)
    return SpectrumEncoder.from_pretrained(out)
