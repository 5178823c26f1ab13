"""Mirror (head-to-tail) plots of a query spectrum against a library spectrum.

The query is drawn upwards and the reference downwards, each scaled so its base peak is 100 %; peaks that
have a partner on the other side within `tolerance` are drawn in a distinct colour, so a reader sees at a
glance what the two spectra share. `mirror_data` is the same picture as JSON for the web page, so the
browser plot and the matplotlib plot agree on matching and labels.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from llm4ms.errors import ConfigError
from llm4ms.spectrum import Spectrum

#: Colours shared with the web page (llm4ms/web/static/app.js).
QUERY_COLOR = "#1f5fa8"
REFERENCE_COLOR = "#6b6b6b"
MATCHED_COLOR = "#e8590c"
PLOT_FORMATS = (".png", ".svg")


def matched_flags(mz: np.ndarray, other_mz: np.ndarray, tolerance: float) -> np.ndarray:
    """True for each peak in `mz` that has a peak in `other_mz` within `tolerance` (inclusive)."""
    mz = np.asarray(mz, dtype=np.float64)
    other = np.sort(np.asarray(other_mz, dtype=np.float64))
    if mz.size == 0 or other.size == 0:
        return np.zeros(mz.size, dtype=bool)
    right = np.clip(np.searchsorted(other, mz), 0, other.size - 1)
    left = np.clip(right - 1, 0, other.size - 1)
    nearest = np.minimum(np.abs(other[right] - mz), np.abs(other[left] - mz))
    return nearest <= tolerance + 1e-9


def relative_intensities(spectrum: Spectrum) -> np.ndarray:
    """Intensities as % of the base peak (all zeros if the spectrum has no positive peak)."""
    inten = np.asarray(spectrum.intensities, dtype=np.float64)
    top = inten.max() if inten.size else 0.0
    return inten * (100.0 / top) if top > 0 else np.zeros_like(inten)


def top_peaks(intensities: np.ndarray, n: int) -> np.ndarray:
    """Indices of the `n` most intense peaks (ties: lower index first), in ascending index order."""
    if n <= 0 or intensities.size == 0:
        return np.empty(0, dtype=np.int64)
    order = np.argsort(-np.asarray(intensities), kind="stable")[:n]
    return np.sort(order)


def _label(spectrum: Spectrum, fallback: str) -> str:
    return str(spectrum.name or spectrum.id or fallback)


def precursor_text(spectrum: Spectrum) -> str:
    """'precursor 418.1373 [M+H]+' for an MS/MS spectrum (what a reader checks first), '' for EI."""
    parts = []
    if spectrum.precursor_mz is not None:
        parts.append(f"precursor {spectrum.precursor_mz:.4f}")
    if spectrum.precursor_type:
        parts.append(str(spectrum.precursor_type))
    return " ".join(parts)


def mirror_data(query: Spectrum, reference: Spectrum, tolerance: float = 0.5, top_labels: int = 10,
                score: Optional[float] = None, labels: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """The JSON the web page draws: per side m/z, % intensity, matched flags and which peaks to label."""
    if tolerance < 0:
        raise ConfigError(f"mirror tolerance must be >= 0 (got {tolerance})")
    names = list(labels) if labels else [_label(query, "query"), _label(reference, "reference")]
    sides = {}
    for key, spec, other, name in (("query", query, reference, names[0]),
                                   ("reference", reference, query, names[1])):
        rel = relative_intensities(spec)
        matched = matched_flags(spec.mz, other.mz, tolerance)
        sides[key] = {"name": name, "mz": [round(float(x), 5) for x in spec.mz],
                      "intensity": [round(float(x), 3) for x in rel], "matched": matched.tolist(),
                      "labels": top_peaks(rel, top_labels).tolist(),
                      "precursor_mz": None if spec.precursor_mz is None else float(spec.precursor_mz),
                      "adduct": spec.precursor_type or None, "precursor": precursor_text(spec)}
    return {"tolerance": float(tolerance), "score": None if score is None else float(score),
            "matched_peaks": int(sum(sides["query"]["matched"])), **sides}


def plot_mirror(query: Spectrum, reference: Spectrum, ax: Any = None, tolerance: float = 0.5,
                labels: Optional[Sequence[str]] = None, top_labels: int = 10, score: Optional[float] = None,
                title: Optional[str] = None):
    """Draw the head-to-tail plot on `ax` (a new figure if None) and return the matplotlib Figure."""
    data = mirror_data(query, reference, tolerance=tolerance, top_labels=top_labels, score=score, labels=labels)
    if ax is None:
        from matplotlib.figure import Figure  # no pyplot: no display, no global state, thread-safe

        fig = Figure(figsize=(10, 5), layout="constrained")
        ax = fig.add_subplot()
    fig = ax.figure
    all_mz = data["query"]["mz"] + data["reference"]["mz"]
    for key, sign, color in (("query", 1, QUERY_COLOR), ("reference", -1, REFERENCE_COLOR)):
        side = data[key]
        mz, inten = np.asarray(side["mz"]), sign * np.asarray(side["intensity"])
        matched = np.asarray(side["matched"], dtype=bool)
        name = side["name"] + (f"\n{side['precursor']}" if side["precursor"] else "")
        if (~matched).any():
            ax.vlines(mz[~matched], 0, inten[~matched], colors=color, linewidth=1.2,
                      label=name if key == "query" else f"{name} (library)")
        if matched.any():
            ax.vlines(mz[matched], 0, inten[matched], colors=MATCHED_COLOR, linewidth=1.6,
                      label="matched peaks" if key == "query" else None)
        for i in side["labels"]:
            ax.annotate(f"{mz[i]:.0f}" if float(mz[i]).is_integer() else f"{mz[i]:.2f}", (mz[i], inten[i]),
                        xytext=(0, 3 * sign), textcoords="offset points", ha="center",
                        va="bottom" if sign > 0 else "top", fontsize=8, color="#222222")
    ax.axhline(0, color="black", linewidth=0.8)
    if all_mz:
        lo, hi = min(all_mz), max(all_mz)
        pad = max(5.0, 0.04 * (hi - lo))
        ax.set_xlim(max(0.0, lo - pad), hi + pad)
    ax.set_ylim(-118, 118)
    ax.set_yticks([-100, -50, 0, 50, 100], labels=["100", "50", "0", "50", "100"])
    ax.set_xlabel("m/z")
    ax.set_ylabel("relative intensity (%)   query ↑  library ↓")
    if title is None:
        title = f"{data['query']['name']}  vs  {data['reference']['name']}"
        if score is not None:
            title += f"   (score {score:.3f})"
        title += f"   {data['matched_peaks']} matched peaks (±{tolerance:g})"
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def save_mirror(query: Spectrum, reference: Spectrum, path: str | Path, dpi: int = 150, **kwargs: Any) -> Path:
    """Save a mirror plot as PNG or SVG (chosen by the suffix of `path`), written atomically."""
    from llm4ms.utils import atomic_path

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in PLOT_FORMATS:
        raise ConfigError(f"{path}: unknown plot format {suffix!r}; use .png or .svg")
    fig = plot_mirror(query, reference, **kwargs)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=suffix[1:], dpi=dpi)
    return path
