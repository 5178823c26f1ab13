"""Generate the README.md model card of a saved encoder from its llm4ms config (nobody has to write it)."""
from __future__ import annotations

import json
from typing import Any

from llm4ms.spectrum import Spectrum
from llm4ms.text import Textualizer

# A small fixed EI-like spectrum, only to show what the textualizer writes.
_EXAMPLE = Spectrum(mz=[27.0, 41.0, 43.0, 63.0, 74.0, 92.0, 134.0],
                    intensities=[35.0, 80.0, 100.0, 40.0, 12.0, 60.0, 4.0], metadata={"exact_mass": 134.08})


def render_model_card(config: dict[str, Any]) -> str:
    """Markdown with YAML front matter; sections follow the Hugging Face model-card layout."""
    base = config.get("base_model") or "unknown"
    training = config.get("training") or {}
    scores = config.get("scores") or {}
    license_id = training.get("license") or config.get("license") or "apache-2.0"
    textualizer = Textualizer.from_dict(config["textualizer"])
    preset = textualizer.preset_name or "custom"
    front = [
        "---",
        "library_name: llm4ms",
        f"base_model: {json.dumps(base)}",
        f"license: {license_id}",
        "tags:",
        *[f"- {tag}" for tag in ("llm4ms", "mass-spectrometry", "spectrum-embedding", "feature-extraction",
                                 "llm2vec", "sentence-similarity")],
        "pipeline_tag: feature-extraction",
        "---",
    ]
    merged = int(config.get("merged_adapters") or 0)
    lora = config.get("lora")
    merged_text = f", {merged} LoRA adapter(s) merged in by the training stages" if merged else ""
    lora_text = f", LoRA adapter r={lora['r']} alpha={lora['alpha']}" if lora else ""
    lines = [
        "# llm4ms spectrum encoder",
        "",
        "## What it is",
        f"A mass-spectrum encoder built from `{base}` made bidirectional (LLM2Vec-style: causal mask off"
        f"{merged_text}{lora_text}).",
        "Spectra are written as text, encoded, pooled and L2-normalised; search a spectral library by cosine"
        " similarity (inner product) to identify compounds.",
        "",
        "## How to use",
        "```python",
        "from llm4ms.model import SpectrumEncoder",
        "from llm4ms.io import read_spectra",
        "",
        'encoder = SpectrumEncoder.from_pretrained("path/or/hub-id")',
        'vectors = encoder.encode(list(read_spectra("queries.msp")))  # float32, unit length',
        "```",
        "Command line:",
        "```bash",
        "llm4ms embed --spectra library.msp --out library_dir --model path/or/hub-id",
        "llm4ms search --query queries.msp --library library_dir -k 10 --out hits.csv",
        "```",
        "",
        *_sentence_transformers_use(config),
        "## Input text",
        f"Textualizer preset: `{preset}`. Settings: `{json.dumps(config['textualizer'], sort_keys=True)}`.",
        "Example text for a small spectrum (m/z 27, 41, 43, 63, 74, 92, 134):",
        "```text",
        textualizer(_EXAMPLE),
        "```",
        "",
        "## Embedding",
        *(_ranking_lines(config.get("ranking")) if config.get("ranking") else []),
        f"Pooling: {config.get('pooling')}; dimension: {config.get('dim')}; maximum length: "
        f"{config.get('max_length')} tokens; padding side: {config.get('padding_side') or 'right'}.",
        f"Identity (sha256 of config and weights): `{config.get('identity', 'n/a')}`.",
        "",
        "## Training data and licences",
        *(_bullets(training) if training else ["Not recorded (untrained or trained outside the llm4ms recipes)."]),
        "",
        "## Measured scores",
        *(_bullets(scores) if scores else ["Not measured yet."]),
        "",
        "## Limitations",
        "- Trained for the spectrum type and instrument conditions of its training data (see above); other "
        "ionisation modes or resolutions need their own evaluation.",
        "- Isomers with near-identical spectra remain hard: check the top hits, not only rank 1.",
        "- Scores from in-silico libraries depend on the predictor used to build them.",
        "- Embeddings from different models (see identity) are not comparable; rebuild the library index.",
        "",
        "## Versions",
        *(_bullets(config.get("versions") or {})),
        "",
    ]
    return "\n".join(front + [""] + lines)


def _sentence_transformers_use(config: dict[str, Any]) -> list[str]:
    """Format 2 folders are sentence-transformers folders: say how to load them without llm4ms's wrapper."""
    return [
        "With sentence-transformers alone (llm4ms installed for its module classes; the texts must come from",
        "the textualizer below, e.g. `model[0].textualizer(spectrum)`):",
        "```python",
        "from sentence_transformers import SentenceTransformer",
        'model = SentenceTransformer("path/to/model", trust_remote_code=True)  # modules: llm4ms.model.modules',
        "vectors = model.encode([model[0].textualizer(s) for s in spectra])",
        "```",
        "",
    ]


def _ranking_lines(ranking: dict[str, Any]) -> list[str]:
    from llm4ms.ranking import Ranking

    return [f"Search ranking (fit on validation, used by `llm4ms search`, the web app and `llm4ms evaluate`): "
            f"{Ranking.from_dict(ranking).describe()}.", ""]


def _bullets(data: dict[str, Any]) -> list[str]:
    out = []
    for key, value in data.items():
        if isinstance(value, dict):
            out.append(f"- {key}:")
            out.extend(f"  - {k}: {v}" for k, v in value.items())
        else:
            out.append(f"- {key}: {value}")
    return out
