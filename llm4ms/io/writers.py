"""Atomic writing of text records, gzip-compressed when the path ends in ``.gz``."""
from __future__ import annotations

import gzip
import os
from typing import Callable, Iterable

from llm4ms.spectrum import Spectrum
from llm4ms.utils import atomic_path


def write_records(spectra: Iterable[Spectrum], path: str | os.PathLike,
                  render: Callable[[Spectrum], str]) -> int:
    """Render each spectrum to text and write them all; the file appears only when complete."""
    count = 0
    with atomic_path(path) as tmp:
        if str(path).lower().endswith(".gz"):
            handle = gzip.open(tmp, "wt", encoding="utf-8", newline="\n")
        else:
            handle = open(tmp, "w", encoding="utf-8", newline="\n")
        with handle:
            for spectrum in spectra:
                handle.write(render(spectrum))
                count += 1
    return count
