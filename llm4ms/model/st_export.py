"""Export an encoder as a sentence-transformers folder (Transformer -> Pooling -> Normalize).

The LoRA adapter is merged into the exported weights (the live encoder is untouched) and config.json
keeps ``is_causal: false``, so `SentenceTransformer(out_dir)` is bidirectional too. The textualizer is
not part of sentence-transformers: feed it the texts from `encoder.texts(spectra)`.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from llm4ms.errors import ConfigError
from llm4ms.model.bidirectional import is_bidirectional
from llm4ms.model.encoder import SpectrumEncoder, base_state_dict

# sentence-transformers' Pooling names for our pooling modes
_ST_POOLING = {"mean": "mean", "weighted_mean": "weightedmean", "last_token": "lasttoken"}


def export_sentence_transformer(encoder: SpectrumEncoder, out_dir: str | Path) -> Path:
    """Write `out_dir` so that ``SentenceTransformer(out_dir)`` gives the encoder's embeddings."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    if encoder.pooling not in _ST_POOLING:
        raise ConfigError(f"pooling {encoder.pooling!r} has no sentence-transformers equivalent "
                          f"(use one of {', '.join(_ST_POOLING)})")
    lm = encoder.causal_lm
    if not is_bidirectional(lm):
        raise ConfigError("the encoder is not bidirectional; refusing to export a causal model")
    out = Path(out_dir)
    with tempfile.TemporaryDirectory() as tmp:
        lm.save_pretrained(tmp, state_dict=base_state_dict(lm, merge_lora=True), safe_serialization=True)
        # right padding: sentence-transformers does not pass position ids, so pads must come last
        side = encoder.tokenizer.padding_side
        encoder.tokenizer.padding_side = "right"
        try:
            encoder.tokenizer.save_pretrained(tmp)
        finally:
            encoder.tokenizer.padding_side = side
        transformer = Transformer(tmp, max_seq_length=encoder.max_length,
                                  model_kwargs={"dtype": lm.dtype})
        pooling = Pooling(encoder.dim, pooling_mode=_ST_POOLING[encoder.pooling])
        model = SentenceTransformer(modules=[transformer, pooling, Normalize()], device="cpu")
        model.save(str(out))
    return out
