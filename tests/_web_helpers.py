"""Shared pieces of the web and plot tests: a small real library and a real uvicorn server in a thread."""
from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from tests._fakes import FakeEncoder, random_spectra

#: Valid structures given to the first library spectra, so structure drawings can be tested.
SMILES = ["CCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O", "CN1C=NC2=C1C(=O)N(C(=O)N2C)C", "CCCCCCOc1ccc(OCCCCCC)cc1"]


def library_spectra(n: int = 60, seed: int = 3):
    spectra = random_spectra(n, seed=seed)
    for spectrum, smiles in zip(spectra, SMILES):
        spectrum.metadata["smiles"] = smiles
    return spectra


def build_library(folder: Path, n: int = 60):
    from llm4ms.library import Library

    return Library.build(library_spectra(n), folder, FakeEncoder(), show_progress=False)


def msp_text(spectra) -> str:
    """MSP records written by hand (independent of the writer under test elsewhere)."""
    parts = []
    for s in spectra:
        lines = [f"Name: {s.name}"]
        if s.molecular_mass is not None:
            lines.append(f"ExactMass: {s.molecular_mass:.4f}")
        lines.append(f"Num Peaks: {s.n_peaks}")
        lines += [f"{m:g} {i:.3f}" for m, i in zip(s.mz, s.intensities)]
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


class ServerThread:
    """uvicorn serving `app` on a free loopback port, in a background thread (so a FakeEncoder works)."""

    def __init__(self, app) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> "ServerThread":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
