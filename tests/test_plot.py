"""Mirror plots: peak matching, scaling, labels, files, and the `llm4ms plot` command."""
from __future__ import annotations

import numpy as np
import pytest

from llm4ms.errors import ConfigError
from llm4ms.plot import MATCHED_COLOR, matched_flags, mirror_data, plot_mirror, save_mirror
from llm4ms.spectrum import Spectrum
from tests._fakes import FakeEncoder
from tests._web_helpers import build_library, library_spectra, msp_text


def _spec(mz, inten, name="s"):
    return Spectrum(np.array(mz, float), np.array(inten, float), {"name": name})


def test_matched_flags_respect_tolerance_on_both_sides():
    q = _spec([41, 43.4, 57, 91], [10, 100, 30, 5])
    r = _spec([40.0, 43.0, 91.6, 120], [50, 20, 100, 1])
    assert matched_flags(q.mz, r.mz, 0.5).tolist() == [False, True, False, False]
    assert matched_flags(q.mz, r.mz, 0.6).tolist() == [False, True, False, True]
    assert matched_flags(r.mz, q.mz, 1.0).tolist() == [True, True, True, False]
    assert matched_flags(q.mz, np.empty(0), 0.5).tolist() == [False] * 4


def test_mirror_data_scales_each_side_to_100_and_labels_top_peaks():
    q = _spec([41, 43, 57, 91], [10, 200, 30, 5], "query A")
    r = _spec([41, 44, 57], [4, 8, 2], "ref B")
    data = mirror_data(q, r, tolerance=0.5, top_labels=2, score=0.87)
    assert data["query"]["intensity"] == [5.0, 100.0, 15.0, 2.5]
    assert data["reference"]["intensity"] == [50.0, 100.0, 25.0]
    assert data["query"]["matched"] == [True, False, True, False]
    assert data["reference"]["matched"] == [True, False, True]
    assert data["matched_peaks"] == 2
    assert data["query"]["labels"] == [1, 2]  # 43 and 57, in m/z order
    assert data["reference"]["labels"] == [0, 1]
    assert (data["query"]["name"], data["reference"]["name"], data["score"]) == ("query A", "ref B", 0.87)
    with pytest.raises(ConfigError):
        mirror_data(q, r, tolerance=-1)


def test_plot_mirror_draws_matched_peaks_in_their_own_colour():
    from matplotlib.colors import to_hex

    q = _spec([41, 43, 57, 91], [10, 200, 30, 5], "query A")
    r = _spec([41, 44, 57], [4, 8, 2], "ref B")
    fig = plot_mirror(q, r, score=0.5)
    ax = fig.axes[0]
    segments = {}
    for coll in ax.collections:
        colour = to_hex(coll.get_colors()[0])
        for seg in coll.get_segments():
            segments.setdefault(colour, []).append((seg[0][0], seg[1][1]))
    matched = sorted(segments[to_hex(MATCHED_COLOR)])
    assert matched == [(41, -50), (41, 5), (57, -25), (57, 15)]
    assert sum(len(v) for v in segments.values()) == 7
    assert "score 0.500" in ax.get_title() and "query A" in ax.get_title()
    texts = {t.get_text() for t in ax.texts}
    assert {"43", "44", "91"} <= texts


def test_save_mirror_png_svg_and_bad_suffix(tmp_path):
    q, r = library_spectra(2)
    png = save_mirror(q, r, tmp_path / "m.png")
    svg = save_mirror(q, r, tmp_path / "m.svg", score=0.1)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in svg.read_text()[:2000]
    with pytest.raises(ConfigError, match="png or .svg"):
        save_mirror(q, r, tmp_path / "m.jpg")
    assert not (tmp_path / "m.jpg").exists()


def test_plot_command_plots_the_requested_hit(tmp_path, monkeypatch, capsys):
    from llm4ms import cli, defaults

    build_library(tmp_path / "lib")
    queries = library_spectra(3)
    (tmp_path / "q.msp").write_text(msp_text(queries))
    monkeypatch.setattr(defaults, "load_encoder", lambda ref=None: FakeEncoder())
    out = tmp_path / "plot.svg"
    code = cli.main(["plot", "--query", str(tmp_path / "q.msp"), "--index", "2", "--library",
                     str(tmp_path / "lib"), "--hit", "1", "--model", "fake", "--out", str(out)])
    assert code == 0
    text = out.read_text()
    assert "compound 1" in text  # query 2 is library spectrum 1: its own best hit
    assert "score 1.000" in text
    assert "hit 1: compound 1" in capsys.readouterr().err
    code = cli.main(["plot", "--query", str(tmp_path / "q.msp"), "--index", "9", "--library",
                     str(tmp_path / "lib"), "--model", "fake", "--out", str(out)])
    assert code == 2
    assert "fewer than 9 spectra" in capsys.readouterr().err
    code = cli.main(["plot", "--query", str(tmp_path / "q.msp"), "--library", str(tmp_path / "lib"),
                     "--model", "fake", "--hit", "5", "-k", "3", "--out", str(out)])
    assert code == 2
    assert "smaller than --hit" in capsys.readouterr().err


def test_msms_mirror_shows_precursor_and_adduct_and_keeps_decimals():
    q = Spectrum(np.array([91.0542, 119.0491]), np.array([100.0, 40.0]),
                 {"name": "q", "precursor_mz": 137.0597, "precursor_type": "[M+H]+"})
    r = Spectrum(np.array([91.0545, 119.0860]), np.array([80.0, 100.0]),
                 {"name": "r", "precursor_mz": 137.0600, "precursor_type": "[M+H]+"})
    data = mirror_data(q, r, tolerance=0.01)
    assert data["query"]["precursor"] == "precursor 137.0597 [M+H]+"
    assert (data["reference"]["precursor_mz"], data["reference"]["adduct"]) == (137.06, "[M+H]+")
    assert data["query"]["matched"] == [True, False]  # 119.0491 vs 119.0860: not within 0.01
    assert mirror_data(_spec([41], [1]), _spec([41], [1]))["query"]["precursor"] == ""  # EI: nothing to show
    legend = [t.get_text() for t in plot_mirror(q, r, tolerance=0.01).axes[0].get_legend().get_texts()]
    assert any("precursor 137.0600 [M+H]+" in text and "(library)" in text for text in legend)
    assert {"91.05", "119.05"} <= {t.get_text() for t in plot_mirror(q, r, tolerance=0.01).axes[0].texts}
