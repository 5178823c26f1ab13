"""The folder format of the re-ranker's small torch networks (`llm4ms.fingerprint_model`, `llm4ms.structure_matcher`).

A folder holds float16 safetensors weights (each module's state under its prefix) and a JSON file with the model's
config dataclass and an ``info`` dict, both written atomically; reading one back gives one clear line for a missing,
damaged or other-version folder, ending in how to get a current one. Why a module: the two models were stored and
checked the same way in two copies.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Mapping

from llm4ms.errors import ConfigError
from llm4ms.utils import atomic_path, write_json

WEIGHTS_FILE = "model.safetensors"
RETRAIN = "retrain it (data_prep/train_reranker.py)"


def save_networks(folder: str | Path, modules: Mapping[str, Any], config: Any, info: Mapping[str, Any],
                  config_file: str) -> Path:
    """Write `modules` (state-dict key prefix -> torch module) and ``{"config": asdict(config), "info": info}``."""
    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {f"{prefix}{k}": v.detach().to(torch.float16).contiguous()
             for prefix, module in modules.items() for k, v in module.state_dict().items()}
    with atomic_path(folder / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp))
    write_json(folder / config_file, {"config": asdict(config), "info": dict(info)})
    return folder


def read_network_config(folder: str | Path, what: str, config_file: str, parse: Callable[[dict], Any],
                        version: int) -> tuple[Any, dict]:
    """(config, info) of a folder written by `save_networks`; `parse` makes the config dataclass from its dict and
    the result's ``version`` must equal `version`."""
    folder = Path(folder)
    if not (folder / config_file).is_file() or not (folder / WEIGHTS_FILE).is_file():
        raise ConfigError(f"{folder}: not a {what} (needs {config_file} and {WEIGHTS_FILE})")
    try:
        import json

        data = json.loads((folder / config_file).read_text())
        config = parse(dict(data["config"]))
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise ConfigError(f"{folder / config_file}: not a {what} config ({err}); {RETRAIN}") from err
    if config.version != version:
        raise ConfigError(f"{folder}: {what} format {config.version}, this llm4ms reads {version}; {RETRAIN}")
    return config, data.get("info") or {}


def load_network_weights(folder: str | Path, modules: Mapping[str, Any]) -> None:
    """Fill `modules` (prefix -> torch module, as saved) from the folder's weights, as float32."""
    from safetensors.torch import load_file

    path = Path(folder) / WEIGHTS_FILE
    try:
        state = {k: v.float() for k, v in load_file(str(path)).items()}
        for prefix, module in modules.items():
            module.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
    except Exception as err:  # safetensors' and torch's errors for a damaged or mismatched file
        raise ConfigError(f"{path}: unreadable or not this network's weights ({str(err)[:120]}); {RETRAIN}") from err
