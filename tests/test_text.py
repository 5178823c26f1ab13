"""Textualizer: the published LLM4MS template rule by rule, and our presets."""
import numpy as np
import pytest

from llm4ms.errors import ConfigError
from llm4ms.spectrum import Spectrum
from llm4ms.text import LLM4MS_PREFIX, PRESETS, Textualizer, round_half_up

LLM4MS = Textualizer.from_preset("llm4ms")


def words(text: str) -> list[str]:
    assert text.startswith(LLM4MS_PREFIX)
    return text[len(LLM4MS_PREFIX):].split(",")


def dipropyl_sulfoxide_like() -> Spectrum:
    """Synthetic spectrum shaped like the published CCCS(=O)CCC example."""
    peaks = {43.2: 1000, 41.0: 800, 92.9: 600, 63.0: 500, 27.0: 450}
    filler = [m for m in range(28, 130) if m not in (41, 43, 63, 74, 92, 27)]
    for k, mz in enumerate(filler[:24]):  # 24 more peaks, all above m/z 74's intensity
        peaks[float(mz)] = 400 - 10 * k
    peaks[74.0] = 100  # 30th most intense
    peaks[110.0] = 50  # passes the threshold, outside the top 30
    peaks[134.7] = 6  # molecular ion: 0.006 >= 0.005, so the trailing max_peak
    peaks[150.0] = 4.9  # 0.0049 < 0.005: dropped, must not be the trailing max_peak
    mz = np.array(sorted(peaks))
    return Spectrum(mz, np.array([peaks[m] for m in mz]))


def test_golden_published_example():
    text = LLM4MS(dipropyl_sulfoxide_like())
    assert text.startswith("Instruction: This is a mass spectra:  Key Peaks: base_peak@43,max_peak@41,"
                           "max_peak@92,extra_peak@63,extra_peak@27,")
    assert text.endswith(",extra_peak@74,max_peak@134")
    got = words(text)
    assert len(got) == 31  # top 30 + trailing max_peak
    assert [w.split("@")[0] for w in got[:3]] == ["base_peak", "max_peak", "max_peak"]
    assert all(w.startswith("extra_peak@") for w in got[3:30])


def test_ties_keep_ascending_mz():
    s = Spectrum([50.0, 60.0, 70.0, 80.0], [10.0, 50.0, 50.0, 50.0])
    assert words(LLM4MS(s)) == ["base_peak@60", "max_peak@70", "max_peak@80", "extra_peak@50", "max_peak@80"]


def test_threshold_is_inclusive_and_relative():
    s = Spectrum([10.0, 20.0, 30.0], [1000.0, 5.0, 4.99])  # 0.005 kept, 0.00499 dropped
    assert words(LLM4MS(s)) == ["base_peak@10", "max_peak@20", "max_peak@20"]
    scaled = Spectrum([10.0, 20.0, 30.0], [1.0, 0.005, 0.00499])
    assert LLM4MS(scaled) == LLM4MS(s)


def test_truncation_not_rounding():
    s = Spectrum([43.99, 57.5], [100.0, 50.0])
    assert words(LLM4MS(s)) == ["base_peak@43", "max_peak@57", "max_peak@57"]
    v2 = Textualizer.from_preset("llm4ms-v2", intensity="none")
    assert v2(s) == "44 58"  # round half up
    assert Textualizer.from_preset("llm4ms-v2", intensity="none", mz_mode="truncate")(s) == "43 57"


def test_fewer_than_three_peaks_and_empty():
    assert words(LLM4MS(Spectrum([91.0], [5.0]))) == ["base_peak@91", "max_peak@91"]
    assert words(LLM4MS(Spectrum([91.0, 65.0], [5.0, 9.0]))) == ["base_peak@65", "max_peak@91", "max_peak@91"]
    assert LLM4MS(Spectrum([], [])) == LLM4MS_PREFIX


def test_trailing_max_peak_is_max_kept_mz_not_top30():
    mz = np.arange(40.0, 80.0)  # 40 peaks, intensity falling with m/z: top 30 end at m/z 69
    s = Spectrum(mz, 1000.0 - 10 * np.arange(40))
    got = words(LLM4MS(s))
    assert got[29] == "extra_peak@69" and got[30] == "max_peak@79"


def test_round_half_up():
    assert round_half_up(42.5) == 43 and round_half_up(43.5) == 44 and round(42.5) == 42
    assert round_half_up(100.125, 2) == pytest.approx(100.13)


def test_v2_sorted_by_mz_with_bins_and_top_n():
    mz = np.arange(50.0, 100.0)
    inten = np.linspace(1.0, 100.0, 50)  # most intense at high m/z
    text = Textualizer.from_preset("llm4ms-v2")(Spectrum(mz, inten))
    tokens = text.split(" ")
    assert len(tokens) == 40
    masses = [int(t.split(":")[0]) for t in tokens]
    assert masses == sorted(masses) and masses[0] == 60  # the 10 weakest (50..59) are cut
    assert tokens[-1] == "99:9"
    bins = [int(t.split(":")[1]) for t in tokens]
    assert bins == sorted(bins) and set(bins) <= set(range(10))


def test_rank_logbins_and_order():
    s = Spectrum([10.0, 20.0, 30.0], [10.0, 100.0, 1.0])
    assert Textualizer(intensity="rank")(s) == "10:2 20:1 30:3"
    assert Textualizer(intensity="none", order="intensity")(s) == "20 10 30"
    log = Textualizer(intensity="logbins", n_bins=3, log_floor=1e-3)
    assert log(s) == "10:2 20:2 30:1"  # log10 rel: -1 -> 2/3 of the range, 0 -> top, -2 -> 1/3


def test_losses_and_precursor():
    s = Spectrum([77.0, 105.0, 122.0], [30.0, 100.0, 40.0], {"exact_mass": 122.04, "precursor_mz": 123.04})
    ei = Textualizer(intensity="none", n_losses=2, loss_reference="molecular")
    assert ei(s) == "77 105 122 L17 L45"  # 122.04-105 = 17.04, the molecular ion itself is skipped
    msms = Textualizer(intensity="none", n_losses=1, loss_reference="precursor", include_precursor=True,
                       mz_decimals=2)
    assert msms(s) == "P123.04 77.00 105.00 122.00 L18.04"
    assert Textualizer(intensity="none", n_losses=2)(Spectrum([77.0], [1.0])) == "77"  # no reference mass


def test_prefix_separator_and_dict_roundtrip():
    t = Textualizer(prefix="EI: ", separator=",", intensity="none")
    assert t(Spectrum([1.0, 2.0], [1.0, 1.0])) == "EI: 1,2"
    for name, preset in PRESETS.items():
        again = Textualizer.from_dict(preset.to_dict())
        assert again == preset and again.preset_name == name
    assert Textualizer.from_dict({"preset": "llm4ms-v2", "top_n": 5}).top_n == 5


def test_bad_settings_raise_config_error():
    with pytest.raises(ConfigError):
        Textualizer(intensity="loud")
    with pytest.raises(ConfigError):
        Textualizer.from_preset("nope")
    with pytest.raises(ConfigError):
        Textualizer.from_dict({"top_k": 3})


def test_deterministic_and_ignores_bad_peaks():
    s = Spectrum([10.0, 20.0, 30.0, 40.0], [5.0, np.nan, -1.0, 10.0])
    t = Textualizer.from_preset("llm4ms-v2")
    assert t(s) == t(s) == "10:5 40:9"
