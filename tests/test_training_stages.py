"""The three stages on a tiny model: they run, save, reload, resume, and actually learn."""
from __future__ import annotations

import json

import numpy as np
import pytest

from _training_helpers import synthetic_spectra, tiny_base
from llm4ms.spectrum import Spectrum
from llm4ms.text import Textualizer
from llm4ms.training import stages
from llm4ms.training.trainers import LOSS_LOG, LoopSettings

TEXTUALIZER = Textualizer.from_preset("llm4ms-v2")


@pytest.fixture(scope="module")
def spectra():
    return synthetic_spectra(8, 2)


@pytest.fixture(scope="module")
def base(tmp_path_factory, spectra):
    return tiny_base(tmp_path_factory.mktemp("tiny") / "base", [TEXTUALIZER(s) for s in spectra])


def _lora():
    from llm4ms.model.encoder import LoraSettings

    return LoraSettings(r=4, alpha=8, dropout=0.1)


def _settings(out, **kw):
    defaults = dict(max_steps=2, batch_size=8, save_steps=2, logging_steps=1, learning_rate=5e-3, seed=0)
    return LoopSettings(output_dir=str(out), **{**defaults, **kw})


@pytest.fixture(scope="module")
def mntp_final(tmp_path_factory, base, spectra):
    out = tmp_path_factory.mktemp("mntp")
    encoder = stages.load_encoder(str(base), TEXTUALIZER)
    before = encoder.encode(spectra)
    texts = encoder.texts(spectra)
    first = stages.train_mntp(encoder, texts, _settings(out, max_steps=2), _lora())
    # rerun with more steps: continues from the step-2 checkpoint instead of starting again
    encoder = stages.load_encoder(str(base), TEXTUALIZER)
    result = stages.train_mntp(encoder, texts, _settings(out, max_steps=4), _lora())
    final = stages.finish_stage(encoder, _settings(out, max_steps=4), "mntp", result, {"texts": len(texts)})
    return {"out": out, "first": first, "result": result, "final": final, "before": before,
            "after": encoder.encode(spectra)}


def test_mntp_runs_resumes_and_changes_embeddings(mntp_final):
    first, result = mntp_final["first"], mntp_final["result"]
    assert first.resumed_from == 0 and np.isfinite(first.final_loss)
    assert result.resumed_from == 2 and result.steps == 4 and np.isfinite(result.final_loss)
    steps = [json.loads(line)["step"] for line in (mntp_final["out"] / LOSS_LOG).read_text().splitlines()]
    assert steps == [1, 2, 3, 4]
    assert not np.allclose(mntp_final["before"], mntp_final["after"], atol=1e-5)


def test_mntp_final_reloads_with_training_info(mntp_final, spectra):
    from llm4ms.model.encoder import SpectrumEncoder

    final = mntp_final["final"]
    assert (final / "adapter").is_dir()
    reloaded = SpectrumEncoder.from_pretrained(final)
    np.testing.assert_allclose(reloaded.encode(spectra), mntp_final["after"], atol=1e-5)
    config = json.loads((final / "llm4ms_config.json").read_text())
    assert config["training"]["stage"] == "mntp" and config["training"]["steps"] == 4
    assert "mntp" in (final / "README.md").read_text()


def test_simcse_from_mntp_trains_a_new_adapter(tmp_path, mntp_final, spectra):
    encoder = stages.load_encoder(str(mntp_final["final"]))
    start = encoder.encode(spectra)
    np.testing.assert_allclose(start, mntp_final["after"], atol=1e-5)  # merged adapter = same function
    result = stages.train_simcse(encoder, encoder.texts(spectra), _settings(tmp_path, max_steps=3, save_steps=0),
                                 _lora(), attention_dropout=0.2)
    assert np.isfinite(result.final_loss)
    assert not np.allclose(encoder.encode(spectra), start, atol=1e-5)
    assert encoder.causal_lm.config.attention_dropout == 0.0  # restored after training
    final = stages.finish_stage(encoder, _settings(tmp_path, max_steps=3), "simcse", result, {})
    stages_run = json.loads((final / "llm4ms_config.json").read_text())["training"]["stages"]
    assert [s["stage"] for s in stages_run] == ["mntp", "simcse"]


def test_supervised_overfits_a_few_pairs(tmp_path, base):
    """Hard synthetic pairs (shared peaks, noisy intensities): loss falls and Recall@1 rises."""
    rng = np.random.default_rng(0)
    common = np.sort(rng.choice(np.arange(30, 250), 10, replace=False))
    pairs = []
    for c in range(8):
        own = rng.choice(np.setdiff1d(np.arange(30, 250), common), 3, replace=False)
        mz = np.concatenate([common, own]).astype(float)
        profile = np.concatenate([rng.random(10) * 0.5 + 0.5, rng.random(3) * 0.3 + 0.05])
        for _ in range(2):
            inten = profile * rng.lognormal(0, 0.5, 13)
            pairs.append(Spectrum(mz, inten / inten.max(), {"inchikey": f"ABCDEFGHIJ{c:04d}-X"}))
    encoder = stages.load_encoder(str(base), TEXTUALIZER)
    texts = encoder.texts(pairs)
    rows = [{"anchor": texts[2 * i], "positive": texts[2 * i + 1], "negatives": []} for i in range(8)]
    evaluate = stages.retrieval_evaluator(encoder, pairs[0::2], pairs[1::2])
    from llm4ms.model.encoder import LoraSettings

    result = stages.train_supervised(encoder, rows, _settings(tmp_path, max_steps=30, save_steps=0, logging_steps=5,
                                                              learning_rate=3e-3),
                                     LoraSettings(r=8, alpha=16, dropout=0.0), scale=20.0, num_negatives=0,
                                     evaluate=evaluate)
    losses = [json.loads(line)["loss"] for line in (tmp_path / LOSS_LOG).read_text().splitlines()]
    assert losses[-1] < 0.5 * losses[0]
    before, after = result.validation["before"]["recall@1"], result.validation["after"]["recall@1"]
    assert after > before and after >= 75.0


def test_supervised_with_hard_negatives_runs(tmp_path, base, spectra):
    from llm4ms.training.data import triple_texts, triple_to_record
    from llm4ms.training.mining import build_triples

    encoder = stages.load_encoder(str(base), TEXTUALIZER)
    rows = triple_texts([triple_to_record(t) for t in build_triples(spectra, num_negatives=2)], encoder.textualizer)
    result = stages.train_supervised(encoder, rows, _settings(tmp_path, max_steps=2, batch_size=4,
                                                              gradient_accumulation_steps=2), _lora(),
                                     num_negatives=2)
    assert np.isfinite(result.final_loss) and result.final_loss > 0
