"""Load evaluation inputs: a spectrum file, or a library folder built by `llm4ms embed`.

Files are read with `llm4ms.io.read_spectra` (the one reader of the package).
"""
from __future__ import annotations

from pathlib import Path

from llm4ms.errors import ConfigError
from llm4ms.io import read_spectra
from llm4ms.spectrum import Spectrum


def load_spectra(path: str | Path) -> list[Spectrum]:
    """All spectra of a file (any format `llm4ms.io` reads) or of a library folder with manifest.json."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such file or folder")
    if path.is_dir():
        if not (path / "manifest.json").exists():
            raise ConfigError(f"{path}: a folder must be a library built by `llm4ms embed` (no manifest.json)")
        from llm4ms.library import Library

        library = Library.load(path)
        return [library.spectrum(i) for i in range(len(library))]
    return list(read_spectra(path))
