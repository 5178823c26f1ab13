"""Make a Hugging Face causal LM attend in both directions, without copying modeling files.

Since transformers 5.2 the mask builders read ``config.is_causal``: False yields a padding-only
(bidirectional) mask for eager and sdpa attention, and the flag survives save/reload through
config.json. Verified here with tiny random configs of Llama, Mistral, Qwen2 and Gemma (eager and
sdpa) and Gemma2 (eager). Flipping ``module.is_causal`` per attention layer (the llm2vec trick) is not
enough on 5.x, so we set the config flag, on nested text configs too.
"""
from __future__ import annotations

import torch

#: Architectures whose bidirectional behaviour was checked with `probe_bidirectional`.
VERIFIED_MODEL_TYPES = frozenset({"llama", "mistral", "qwen2", "gemma", "gemma2"})


def _configs(model):
    config = model.config
    yield config
    for name in ("text_config", "language_config"):
        sub = getattr(config, name, None)
        if sub is not None:
            yield sub


def make_bidirectional(model):
    """Set ``is_causal = False`` on the model's config(s); returns the same model."""
    for config in _configs(model):
        config.is_causal = False
    return model


def is_bidirectional(model) -> bool:
    return all(getattr(config, "is_causal", True) is False for config in _configs(model))


@torch.no_grad()
def probe_bidirectional(body, vocab_size: int, length: int = 8, seed: int = 0) -> bool:
    """True if the hidden state at position 0 depends on the last token (i.e. attention looks ahead).

    `body` is a base model returning ``last_hidden_state``; cheap for small models, used by tests and
    as a check for unverified architectures.
    """
    generator = torch.Generator().manual_seed(seed)
    low = min(4, vocab_size - 2)
    ids = torch.randint(low, vocab_size, (1, length), generator=generator)
    other = ids.clone()
    other[0, -1] = low + (int(ids[0, -1]) - low + 1) % (vocab_size - low)
    device = next(body.parameters()).device
    mask = torch.ones_like(ids)
    first = body(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state[0, 0]
    second = body(input_ids=other.to(device), attention_mask=mask.to(device)).last_hidden_state[0, 0]
    return not torch.allclose(first.float(), second.float(), atol=1e-6)
