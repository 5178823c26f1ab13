"""Mutation fuzzer for `llm4ms.io.read_spectra`: tracebacks, hangs and invalid spectra accepted, per family.

Small valid examples of every format (the bundled examples/ files, cut to two records, and the formats'
test fixtures) are mutated by seeded families — byte flips, truncation, duplicated/removed/swapped
lines, huge numbers, inf/nan, non-ASCII digits and ``4_3``, encodings (UTF-16/32, BOM + latin-1),
long lines, empty records, peak counts, negative/zero intensities, quoting, line endings, hostile keys
(non-numeric PEPMASS, 100k repeated ``Synon:`` lines), splices of two formats, gzip — and each result
is read completely. An outcome is:

- ``clean error``: an `llm4ms.errors.Llm4msError` (a one-line message naming file/record/line);
- ``accepted``: the read finished (records may have been skipped under ``skip_invalid``); every spectrum
  it gave is then checked (finite, in-range, sorted unique m/z; numeric precursor m/z) and a violation
  counts as ``invalid accepted``;
- ``traceback``: any other exception, or an error message that is not one short line (a bug: goal 0);
- ``hang``: the read took longer than ``--hang-seconds`` (goal 0).

Usage: python benchmarks/fuzz_readers.py [--inputs 10000] [--seed 0] [--out benchmarks/results/fuzz_readers.json]
The test suite runs the same fuzzer on a few hundred inputs (tests/test_fuzz_readers.py).
"""
from __future__ import annotations

import argparse
import codecs
import gzip
import logging
import os
import platform
import random
import re
import signal
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable, Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = Path(__file__).parent / "results" / "fuzz_readers.json"

# ---- seeds: small valid examples of each format ---------------------------------------------------
_INLINE_SEEDS = {
    "nist.msp": (
        "Name: Methanol\nDB#: NIST-1\nInChIKey: OKKJLVBELUTLKV-UHFFFAOYSA-N\nFormula: CH4O\nMW: 32\n"
        "ExactMass: 32.026215\nSynon: methyl alcohol\nSynon: carbinol\n"
        "Comments: \"SMILES=CO\" \"computed mass=32.0262\"\nNum Peaks: 3\n15 100; 29 450\n31 999\n\n"
        "Name: Ethanol\nDB#: NIST-2\nNum Peaks: 2\n31 999\n45 300\n"),
    "riken.msp": (
        "NAME: Caffeine\nPRECURSORMZ: 195.0877\nPRECURSORTYPE: [M+H]+\nIONMODE: Positive\nNum Peaks: 3\n"
        "110.07\t120\t\"frag a\"\n138.066\t999\t\"b2 with spaces\"\n195.0877\t500\n"),
    "dense.msp": "Name: A\n10 1\n11 2\nName: B\nNumPeaks: 1\n12 3\nDB#: C-1\nName: C\n13 4\n",
    "golm.msp": "Name: X\nRI: 1200\nNum peaks: 3\n73 1000; 74 129; 147 80;\n",
    "defaults.mgf": (
        "COM=a file comment header\nION=global default\nBEGIN IONS\nTITLE=Scan 1\nPEPMASS=301.14 12000\n"
        "CHARGE=2+\nSMILES=CCO\n110.5 10 b1\n120.25 20\nEND IONS\n\nBEGIN IONS\nTITLE=Scan 2\n"
        "SPECTRUMID=CCMSLIB0001\nPEPMASS=150.0\nCHARGE=1-\n50 5\nEND IONS\n"),
    "peaks.csv": "mz,intensity\n41,54.6\n43,146.4\n57,16.3\n",
    "peaks.tsv": "m/z\tAbundance\n41\t54.6\n43\t146.4\n57\t16.3\n",
    "peaks.txt": "41 54.6\n43   146.4\n# a comment\n57 16.3\n",
    "long.csv": ('spectrum_id,name,smiles,mz,intensity\ns1,"2-Butene, (Z)-",C/C=C\\C,41,100\n'
                 's1,"2-Butene, (Z)-",C/C=C\\C,56,50\ns2,Thiophenethiol,Sc1cccs1,116,999\n'),
    "benzene.jdx": (
        "##TITLE=Benzene\n##JCAMP-DX=4.24\n##DATA TYPE=MASS SPECTRUM\n##CAS REGISTRY NO=71-43-2\n"
        "##MOLFORM=C6 H6\n##MW=78\n##NPOINTS=4\n##PEAK TABLE=(XY..XY)\n50,160 51,180; 52,190\n78,9999\n"
        "##END=\n$$ a comment between blocks\n##TITLE=Toluene\n##PEAK TABLE=(XY..XY)\n91,9999 92,6000\n##END=\n"),
    "link.dx": (
        "##TITLE=compound file\n##JCAMP-DX=5.01\n##DATA TYPE=LINK\n##BLOCKS=1\n##TITLE=profile\n##XFACTOR=1\n"
        "##YFACTOR=2\n##FIRSTX=50\n##LASTX=55\n##NPOINTS=6\n##XYDATA=(X++(Y..Y))\n50 1 0 3\n53 0 5 6\n"
        "##END=\n##END=\n"),
}
_RECORD_END = {".msp": "\n\n", ".mgf": "END IONS\n"}


def seeds() -> list[tuple[str, str]]:
    """``(name, text)`` seeds: the bundled examples (two records each) and the inline fixtures."""
    out: list[tuple[str, str]] = []
    for path in sorted((ROOT / "examples").glob("*")):
        suffix = path.suffix.lower()
        if suffix not in (".msp", ".mgf", ".csv", ".txt", ".tsv", ".jdx") or path.stat().st_size > 200_000:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if suffix in _RECORD_END:
            marker = _RECORD_END[suffix]
            parts = text.split(marker)
            text = marker.join(parts[:2]) + marker
        elif text.count("\n") > 60:
            text = "\n".join(text.splitlines()[:60]) + "\n"
        out.append((f"examples/{path.name}", text))
    out.extend(_INLINE_SEEDS.items())
    return out


def _suffix(name: str) -> str:
    return Path(name).suffix.lower()


# ---- mutation families -------------------------------------------------------------------------------
_NUMBER = re.compile(r"(?<![\w.])[0-9]+(?:\.[0-9]+)?(?![\w.])")
_HUGE = ["1e400", "1e308", "-1e308", "99999999999999999999999", "1e31", "-1e31", "100001", "1e-400",
         "123456789012345678901234567890.5", "0" * 400 + "1", "1" + "0" * 400, "9" * 5000]
_NONFINITE = ["inf", "-inf", "nan", "NaN", "Infinity", "-Infinity", "INF", "+nan", "1e999"]
_DIGITS = {"arabic": "٠١٢٣٤٥٦٧٨٩", "fullwidth": "０１２３４５６７８９",
           "devanagari": "०१२३४५६७८९", "bengali": "০১২৩৪৫৬৭৮৯",
           "mathbold": "𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗"}
_COUNT_VALUES = ["37.9", "-1", "inf", "1e400", "", "abc", "0", "99999999999999999999", "3.0", "٣", "4_3",
                 "1e2", "0x10", " 2 ", "+2", "nan"]
_HOSTILE_KEYS = ["PrecursorMZ: abc", "PrecursorMZ: inf", "PrecursorMZ: 1e400", "PrecursorMZ: -5",
                 "PRECURSORMZ: 4_3", "PEPMASS=abc", "PEPMASS=nan 100", "PEPMASS=1e400", "PEPMASS=",
                 "CHARGE=٢+", "CHARGE=99999999999999999999+", "CHARGE=" + "7" * 5000 + "+",
                 "MSLEVEL=" + "2" * 5000, "ExactMass: 1e400", "MW: nan", "RI: ٤٣",
                 "Num Peaks: 2", "NUM PEAKS: 1e400", "##NPOINTS=abc", "##XFACTOR=1e400", "##YFACTOR=nan",
                 "##END=", "##TITLE=", "BEGIN IONS", "END IONS", "Name:", "Name: \x00", "Synon: $:00in-source",
                 "key without colon", ":", "=", "##", "\x00\x00", "\ufeffName: bom inside", "\u2028",
                 "Comments: \"SMILES=C\" \"precursor m/z=abc\""]
_EMPTY_RECORDS = ["Name: Empty\nNum Peaks: 0\n\n", "Name: Zero\n10 0\n11 0\n\n", "Name: Nothing\n\n",
                  "BEGIN IONS\nEND IONS\n", "BEGIN IONS\nTITLE=z\n10 0\nEND IONS\n",
                  "##TITLE=empty\n##PEAK TABLE=(XY..XY)\n##END=\n", "##TITLE=x\n##END=\n", "\n\n\n", "   \n\t\n",
                  "mz,intensity\n", "s3,name,C,,\n", "Num Peaks: 0\n"]


def _lines(text: str) -> list[str]:
    return text.split("\n")


def _join(lines: list[str]) -> str:
    return "\n".join(lines)


def _replace_number(rng: random.Random, text: str, values: list[str]) -> str:
    matches = list(_NUMBER.finditer(text))
    if not matches:
        return text + rng.choice(values)
    for _ in range(rng.randint(1, 3)):
        m = rng.choice(matches)
        text = text[:m.start()] + rng.choice(values) + text[m.end():]
        matches = list(_NUMBER.finditer(text))
        if not matches:
            break
    return text


def m_byte_flip(rng: random.Random, data: bytes, name: str) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if not out:
            break
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def m_byte_insert(rng: random.Random, data: bytes, name: str) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        i = rng.randint(0, len(out))
        piece = rng.choice([b"\x00", b"\xff", b"\xfe", b"\x80", b"\xc3", b"\xe2\x80", b"\r", b"\x1a", b"\t",
                            bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))])
        out[i:i] = piece
    return bytes(out)


def m_truncate(rng: random.Random, data: bytes, name: str) -> bytes:
    return data[:rng.randint(0, max(0, len(data) - 1))]


def m_dup_lines(rng: random.Random, text: str, name: str) -> str:
    lines = _lines(text)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(lines))
        lines.insert(rng.randrange(len(lines) + 1) if rng.random() < 0.3 else i, lines[i])
    return _join(lines)


def m_remove_lines(rng: random.Random, text: str, name: str) -> str:
    lines = _lines(text)
    for _ in range(rng.randint(1, 4)):
        if len(lines) > 1:
            del lines[rng.randrange(len(lines))]
    return _join(lines)


def m_swap_lines(rng: random.Random, text: str, name: str) -> str:
    lines = _lines(text)
    if rng.random() < 0.2:
        rng.shuffle(lines)
    else:
        for _ in range(rng.randint(1, 3)):
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
    return _join(lines)


def m_huge_numbers(rng: random.Random, text: str, name: str) -> str:
    return _replace_number(rng, text, _HUGE)


def m_nonfinite(rng: random.Random, text: str, name: str) -> str:
    return _replace_number(rng, text, _NONFINITE)


def m_unicode_digits(rng: random.Random, text: str, name: str) -> str:
    matches = list(_NUMBER.finditer(text))
    if not matches:
        return text
    m = rng.choice(matches)
    token = m.group()
    kind = rng.choice(list(_DIGITS) + ["underscore", "underscore"])
    if kind == "underscore":
        new = token[0] + "_" + token[1:] if len(token) > 1 else token + "_0"
    else:
        digits = _DIGITS[kind]
        new = "".join(digits[int(c)] if c.isdigit() and rng.random() < 0.7 else c for c in token)
    return text[:m.start()] + new + text[m.end():]


def m_encoding(rng: random.Random, text: str, name: str) -> bytes:
    accented = text.replace("a", "é", 1) if rng.random() < 0.7 else text
    choice = rng.choice(["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-8-sig", "bom+latin1",
                         "latin-1", "cp1252", "utf-16-nobom", "mixed", "bom-only", "bom-twice"])
    if choice == "utf-16-nobom":
        return accented.encode("utf-16-le")
    if choice in ("utf-16-le", "utf-16-be"):
        bom = codecs.BOM_UTF16_LE if choice.endswith("le") else codecs.BOM_UTF16_BE
        return bom + accented.encode(choice)
    if choice == "utf-32-le":
        return codecs.BOM_UTF32_LE + accented.encode("utf-32-le")
    if choice == "bom+latin1":
        return codecs.BOM_UTF8 + accented.encode("latin-1", errors="replace")
    if choice == "mixed":
        half = len(accented) // 2
        return accented[:half].encode("utf-8") + accented[half:].encode("latin-1", errors="replace")
    if choice == "bom-only":
        return codecs.BOM_UTF8
    if choice == "bom-twice":
        return codecs.BOM_UTF8 + codecs.BOM_UTF8 + accented.encode("utf-8")
    return accented.encode(choice, errors="replace")


def m_long_line(rng: random.Random, text: str, name: str) -> str:
    size = rng.choice([10_000, 140_000, 600_000, 1_100_000, 2_500_000])
    lines = _lines(text)
    i = rng.randrange(len(lines) + 1)
    kind = rng.choice(["key", "peaks", "junk", "cell"])
    if kind == "key":
        line = "Comments: " + "x" * size
    elif kind == "peaks":
        line = ("50 1 51.5 20; 52 999 " * (size // 20 + 1))[:size]
    elif kind == "cell":
        line = '"' + "9" * size + '",1'
    else:
        line = "".join(rng.choice("ab1 ;,:\t") for _ in range(500)) * max(1, size // 500)
    lines.insert(i, line)
    return _join(lines)


def m_empty_records(rng: random.Random, text: str, name: str) -> str:
    lines = _lines(text)
    for _ in range(rng.randint(1, 3)):
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(_EMPTY_RECORDS))
    return _join(lines) if rng.random() < 0.8 else rng.choice(_EMPTY_RECORDS)


def m_peak_count(rng: random.Random, text: str, name: str) -> str:
    value = rng.choice(_COUNT_VALUES)
    pattern = re.compile(r"^(num ?peaks\s*:|##NPOINTS=)(.*)$", re.I | re.M)
    if pattern.search(text) and rng.random() < 0.6:
        return pattern.sub(lambda m: m.group(1) + " " + value if rng.random() < 0.7 else m.group(0), text)
    lines = _lines(text)
    label = "##NPOINTS=" if _suffix(name) in (".jdx", ".dx") else "Num Peaks: "
    lines.insert(rng.randrange(len(lines) + 1), label + value)
    return _join(lines)


def m_intensities(rng: random.Random, text: str, name: str) -> str:
    mode = rng.choice(["negate", "zero", "all-zero", "negative-mz"])
    pair = re.compile(r"^(\s*[0-9.]+)([\s,;:]+)([0-9.]+)", re.M)
    if mode == "all-zero":
        return pair.sub(lambda m: f"{m.group(1)}{m.group(2)}0", text)
    matches = list(pair.finditer(text))
    if not matches:
        return text
    m = rng.choice(matches)
    if mode == "negate":
        new = f"{m.group(1)}{m.group(2)}-{m.group(3)}"
    elif mode == "zero":
        new = f"{m.group(1)}{m.group(2)}0"
    else:
        new = f"-{m.group(1).strip()}{m.group(2)}{m.group(3)}"
    return text[:m.start()] + new + text[m.end():]


def m_quoting(rng: random.Random, text: str, name: str) -> str:
    out = list(text)
    for _ in range(rng.randint(1, 5)):
        out.insert(rng.randint(0, len(out)), rng.choice(['"', '"', ",", ";", ":", "\t", "'", "=", "$$", "##"]))
    return "".join(out)


def m_line_endings(rng: random.Random, text: str, name: str) -> str:
    choice = rng.choice(["crlf", "cr", "mixed", "no-final", "many-blank", "trailing-space"])
    if choice == "crlf":
        return text.replace("\n", "\r\n")
    if choice == "cr":
        return text.replace("\n", "\r")
    if choice == "mixed":
        return "".join(ch if ch != "\n" else rng.choice(["\n", "\r\n", "\r"]) for ch in text)
    if choice == "no-final":
        return text.rstrip("\n")
    if choice == "many-blank":
        return text.replace("\n", "\n\n\n")
    return text.replace("\n", " \t\n")


def m_hostile_keys(rng: random.Random, text: str, name: str) -> str:
    lines = _lines(text)
    if rng.random() < 0.08:  # many repeated keys: key joining must stay linear
        n = rng.choice([20_000, 100_000])
        key = rng.choice(["Synon: s{}", "SYNON=x{}", "##$SYNON=y{}", "Synon: same"])
        block = "\n".join(key.format(k) for k in range(n))
        lines.insert(1 if len(lines) > 1 else 0, block)
        return _join(lines)
    for _ in range(rng.randint(1, 3)):
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(_HOSTILE_KEYS))
    return _join(lines)


def m_splice(rng: random.Random, text: str, name: str, others: list[tuple[str, str]] = ()) -> str:
    if not others:
        return text
    _, other = rng.choice(others)
    a, b = rng.randrange(len(text) + 1), rng.randrange(len(other) + 1)
    return text[:a] + other[b:] if rng.random() < 0.5 else other[:b] + text[a:]


FAMILIES: dict[str, Callable] = {
    "byte_flip": m_byte_flip, "byte_insert": m_byte_insert, "truncate": m_truncate,
    "dup_lines": m_dup_lines, "remove_lines": m_remove_lines, "swap_lines": m_swap_lines,
    "huge_numbers": m_huge_numbers, "inf_nan": m_nonfinite, "unicode_digits": m_unicode_digits,
    "encodings": m_encoding, "long_lines": m_long_line, "empty_records": m_empty_records,
    "peak_counts": m_peak_count, "intensities": m_intensities, "quoting": m_quoting,
    "line_endings": m_line_endings, "hostile_keys": m_hostile_keys, "splice": m_splice,
    "stacked": None,  # two or three families in a row
}
_BYTE_FAMILIES = {"byte_flip", "byte_insert", "truncate"}


def mutate(rng: random.Random, family: str, name: str, text: str,
           pool: list[tuple[str, str]]) -> tuple[bytes, str]:
    """One mutated input: ``(bytes, file suffix)``; a fifth of inputs are gzip-compressed (some cut)."""
    steps = [family] if family != "stacked" else rng.sample([f for f in FAMILIES if f != "stacked"],
                                                            rng.randint(2, 3))
    value: object = text
    for step in steps:
        func = FAMILIES[step]
        if step in _BYTE_FAMILIES:
            data = value if isinstance(value, bytes) else str(value).encode("utf-8")
            value = func(rng, data, name)
        else:
            current = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
            value = func(rng, current, name, pool) if step == "splice" else func(rng, current, name)
    data = value if isinstance(value, bytes) else str(value).encode("utf-8")
    suffix = _suffix(name)
    if rng.random() < 0.05:  # the wrong extension for the content
        suffix = rng.choice([".msp", ".mgf", ".csv", ".txt", ".jdx"])
    if rng.random() < 0.15:
        data = gzip.compress(data, mtime=0)
        if rng.random() < 0.3:
            data = data[:rng.randint(0, len(data))]
        suffix += ".gz"
    return data, suffix


# ---- running --------------------------------------------------------------------------------------
class Hang(BaseException):
    """Raised by the alarm when one read takes too long (a BaseException: no `except Exception` eats it)."""


def spectrum_problem(spectrum) -> Optional[str]:
    """Why an accepted spectrum is invalid (what `llm4ms.io.validate` promises), or None."""
    try:
        from llm4ms.io.validate import MAX_INTENSITY, MAX_MZ
    except ImportError:  # measuring an older version of the readers
        MAX_INTENSITY, MAX_MZ = 1e30, 1e5
    mz, inten = spectrum.mz, spectrum.intensities
    if mz.shape != inten.shape:
        return "m/z and intensity lengths differ"
    if mz.size:
        if not (np.isfinite(mz).all() and np.isfinite(inten).all()):
            return "non-finite peak value"
        if mz.min() < 0 or mz.max() > MAX_MZ or inten.min() < 0 or inten.max() > MAX_INTENSITY:
            return "peak value out of range"
        if mz.size > 1 and not (np.diff(mz) > 0).all():
            return "m/z not strictly ascending (duplicates kept?)"
    precursor = spectrum.metadata.get("precursor_mz")
    if precursor not in (None, "") and not (isinstance(precursor, float) and np.isfinite(precursor)):
        return f"precursor m/z {precursor!r} is not a finite number"
    if getattr(spectrum, "is_searchable", True) is False and mz.size and (inten > 0).any():
        return "is_searchable disagrees with the peaks"
    return None


class Tally:
    """Outcomes of one family (a plain class: the script is also loaded without being in sys.modules)."""

    def __init__(self) -> None:
        self.tried = self.clean = self.accepted = self.invalid = self.tracebacks = self.hangs = 0
        self.seconds = 0.0
        self.examples: list[dict] = []


def read_one(path: Path, skip_invalid: bool, hang_seconds: float) -> tuple[str, str]:
    """Read `path` completely: ``(outcome, detail)`` with outcome clean/accepted/invalid/traceback/hang."""
    from llm4ms.errors import Llm4msError
    from llm4ms.io import ReadReport, read_spectra

    def alarm(signum, frame):
        raise Hang()

    timed = hasattr(signal, "SIGALRM")  # POSIX: a read that never ends is interrupted and counted as a hang
    if timed:
        previous = signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, hang_seconds)
    try:
        report = ReadReport()
        problems = []
        for spectrum in read_spectra(path, skip_invalid=skip_invalid, report=report):
            problem = spectrum_problem(spectrum)
            if problem:
                problems.append(problem)
        if problems:
            return "invalid", problems[0]
        return "accepted", f"{report.read} read, {report.skipped} skipped, {getattr(report, 'warned', 0)} warnings"
    except Hang:
        return "hang", f"no answer within {hang_seconds:g} s"
    except Llm4msError as err:
        if "\n" in str(err).strip() or len(str(err)) > 1000:
            return "traceback", f"not a one-line error message ({len(str(err))} characters): {str(err)[:200]!r}"
        return "clean", str(err)[-200:]
    except Exception as err:  # noqa: BLE001 - this is what the fuzzer looks for
        where = traceback.extract_tb(err.__traceback__)[-1]
        return "traceback", f"{type(err).__name__}: {str(err)[:160]} ({Path(where.filename).name}:{where.lineno})"
    finally:
        if timed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def run(inputs: int, seed: int = 0, hang_seconds: float = 10.0, time_budget: Optional[float] = None,
        keep_examples: int = 3, workdir: Optional[Path] = None) -> dict:
    """Fuzz `inputs` mutated files (fewer if `time_budget` seconds run out); figures per family and in total."""
    logging.getLogger("llm4ms").setLevel(logging.ERROR)  # readers warn per file; thousands of lines here
    rng = random.Random(seed)
    pool = seeds()
    families = list(FAMILIES)
    tallies = {name: Tally() for name in families}
    start = time.perf_counter()
    if workdir is None and Path("/dev/shm").is_dir() and os.access("/dev/shm", os.W_OK):
        workdir = Path("/dev/shm")  # memory-backed: the fuzzer writes thousands of small files
    with tempfile.TemporaryDirectory(prefix="llm4ms-fuzz-", dir=workdir) as tmp:
        for index in range(inputs):
            if time_budget is not None and time.perf_counter() - start > time_budget:
                break
            family = families[index % len(families)]
            name, text = pool[rng.randrange(len(pool))]
            data, suffix = mutate(rng, family, name, text, pool)
            path = Path(tmp) / f"input{index % 7}{suffix}"
            path.write_bytes(data)
            began = time.perf_counter()
            outcome, detail = read_one(path, skip_invalid=rng.random() < 0.5, hang_seconds=hang_seconds)
            tally = tallies[family]
            tally.seconds += time.perf_counter() - began
            tally.tried += 1
            if outcome == "clean":
                tally.clean += 1
            elif outcome == "accepted":
                tally.accepted += 1
            else:
                counter = {"invalid": "invalid", "traceback": "tracebacks", "hang": "hangs"}[outcome]
                setattr(tally, counter, getattr(tally, counter) + 1)
                if len(tally.examples) < keep_examples:  # reproduce with the seed and the input number
                    tally.examples.append({"input": index, "family": family, "seed_file": name, "suffix": suffix,
                                           "outcome": outcome, "detail": detail.replace(f"{tmp}/", "")})
    total = Tally()
    for tally in tallies.values():
        for key in ("tried", "clean", "accepted", "invalid", "tracebacks", "hangs", "seconds"):
            setattr(total, key, getattr(total, key) + getattr(tally, key))
    return {"seed": seed, "inputs_requested": inputs, "hang_seconds": hang_seconds,
            "wall_seconds": round(time.perf_counter() - start, 2), "seeds": [name for name, _ in pool],
            "families": {name: _row(t) for name, t in tallies.items()}, "total": _row(total),
            "examples": [e for t in tallies.values() for e in t.examples]}


def _row(t: Tally) -> dict:
    return {"tried": t.tried, "clean_errors": t.clean, "accepted": t.accepted, "invalid_accepted": t.invalid,
            "tracebacks": t.tracebacks, "hangs": t.hangs, "seconds": round(t.seconds, 2)}


def table(result: dict) -> str:
    head = f"{'family':<16} {'tried':>6} {'clean err':>9} {'accepted':>8} {'invalid':>7} {'traceback':>9} " \
           f"{'hangs':>5} {'seconds':>8}"
    lines = [head, "-" * len(head)]
    rows = list(result["families"].items()) + [("TOTAL", result["total"])]
    for name, r in rows:
        lines.append(f"{name:<16} {r['tried']:>6} {r['clean_errors']:>9} {r['accepted']:>8} "
                     f"{r['invalid_accepted']:>7} {r['tracebacks']:>9} {r['hangs']:>5} {r['seconds']:>8.2f}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=10_000, help="mutated files to read")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hang-seconds", type=float, default=10.0, help="a read slower than this is a hang")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    result = run(args.inputs, seed=args.seed, hang_seconds=args.hang_seconds)
    print(table(result))
    for example in result["examples"][:20]:
        print(f"  {example['outcome']}: {example['seed_file']} ({example['suffix']}): {example['detail']}")
    from llm4ms.utils import write_json

    result.update({"python": platform.python_version(), "cpu_count": os.cpu_count(),
                   "command": f"python benchmarks/fuzz_readers.py --inputs {args.inputs} --seed {args.seed}"})
    write_json(args.out, result)
    print(f"wrote {args.out}")
    return 0 if result["total"]["tracebacks"] == 0 and result["total"]["hangs"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
