"""MassBank record reader: the ``TAG: value`` text files of a MassBank/MassBank-data checkout.

A record is ``TAG: value`` lines (``ACCESSION``, ``CH$NAME``, ``AC$MASS_SPECTROMETRY: ION_MODE POSITIVE``...),
then ``PK$NUM_PEAK`` and ``PK$PEAK: m/z int. rel.int.`` followed by indented peak lines, and ``//``. One file
usually holds one record; records separated by ``//`` lines are read one after the other.

Tags with a sub-tag (``CH$LINK``, ``AC$MASS_SPECTROMETRY``, ``AC$CHROMATOGRAPHY``, ``MS$FOCUSED_ION``,
``MS$DATA_PROCESSING``, ``SP$LINK``, ``SP$SAMPLE``) become raw keys ``TAG:SUBTAG`` (``MS$FOCUSED_ION:PRECURSOR_M/Z``),
which `llm4ms.io.keys` maps onto the canonical keys (the MassBank spellings are synonyms there). The first
``CH$NAME`` is the name (the others are synonyms, kept as ``synonyms``); ``N/A`` values count as absent; a
``CH$IUPAC`` that is not an InChI is not kept as one. Peak lines carry three columns: m/z and intensity are
read exactly as written (no rounding), the relative intensity is ignored. Indented lines of other tags
(``PK$ANNOTATION``) are skipped. A peak count that differs from ``PK$NUM_PEAK``, a bad number or a record
cut before ``//`` is an error naming file, record and line; values then pass `llm4ms.io.validate.finish_record`.
"""
from __future__ import annotations

from typing import Iterable, Iterator, Optional

from llm4ms.errors import SpectrumFormatError
from llm4ms.io._base import Item
from llm4ms.io.validate import RawMeta, finish_record, number_problem, parse_count, parse_number

#: tags whose value starts with a sub-tag (``AC$MASS_SPECTROMETRY: MS_TYPE MS2``)
SUBTAGGED = frozenset({"CH$LINK", "AC$MASS_SPECTROMETRY", "AC$CHROMATOGRAPHY", "MS$FOCUSED_ION",
                       "MS$DATA_PROCESSING", "SP$LINK", "SP$SAMPLE", "AC$GENERAL"})


class _Record:
    """The lines of one record, collected until ``//``."""

    def __init__(self, number: int, line: int) -> None:
        self.number = number
        self.line = line
        self.raw = RawMeta()
        self.mz: list[float] = []
        self.intensities: list[float] = []
        self.peak_line = 0
        self.num_peaks: Optional[int] = None
        self.num_line = 0
        self.in_peaks = False
        self.error: Optional[tuple[str, int]] = None

    def fail(self, message: str, line: int) -> None:
        if self.error is None:
            self.error = (message, line)

    def add(self, tag: str, value: str, line: int) -> None:
        value = value.strip()
        if value in ("", "N/A", "NA"):
            return
        if tag in SUBTAGGED:
            sub, _, rest = value.partition(" ")
            tag, value = f"{tag}:{sub}", rest.strip()
            if value in ("", "N/A", "NA"):
                return
        if tag == "CH$NAME":
            if "CH$NAME" in self.raw:
                tag = "synonyms"
        elif tag == "CH$IUPAC" and not value.startswith("InChI="):
            return
        self.raw.add(tag, value, line)

    def peak(self, text: str, line: int) -> None:
        tokens = text.split()
        if tokens[:1] == ["N/A"]:
            return
        if len(tokens) < 2:
            self.fail(f"peak line needs m/z and intensity: {text.strip()[:60]!r}", line)
            return
        values = []
        for token in tokens[:2]:
            number = parse_number(token)
            if number is None:
                self.fail(f"{number_problem(token, 'peak value')} in {text.strip()[:60]!r}", line)
                return
            values.append(number)
        if not self.mz:
            self.peak_line = line
        self.mz.append(values[0])
        self.intensities.append(values[1])

    def finish(self, path: str) -> Iterator[Item]:
        if self.error is not None:
            yield SpectrumFormatError(self.error[0], path, self.number, self.error[1])
            return
        if self.num_peaks is not None and self.num_peaks != len(self.mz):
            yield SpectrumFormatError(f"PK$NUM_PEAK says {self.num_peaks} but {len(self.mz)} peaks were found",
                                      path, self.number, self.num_line)
            return
        yield from finish_record(self.mz, self.intensities, self.raw, path, self.number, self.line,
                                 peak_line=self.peak_line or self.num_line or self.line)


def iter_massbank(handle: Iterable[str], path: str) -> Iterator[Item]:
    """Yield a `Spectrum` (or a `SpectrumFormatError`, or a `ReadWarning`) per MassBank record."""
    record: Optional[_Record] = None
    count = 0
    for lineno, line in enumerate(handle, 1):
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        if text.startswith("//"):
            if record is not None:
                yield from record.finish(path)
            record = None
            continue
        if record is None:
            count += 1
            record = _Record(count, lineno)
        if text[:1].isspace():
            if record.in_peaks:
                record.peak(text, lineno)
            continue  # continuation lines of other tags (PK$ANNOTATION)
        tag, sep, value = text.partition(":")
        if not sep:
            record.fail(f"line is neither 'TAG: value' nor an indented peak: {text[:60]!r}", lineno)
            continue
        tag = tag.strip()
        record.in_peaks = tag == "PK$PEAK"
        if tag == "PK$NUM_PEAK":
            number = parse_count(value)
            if number is None and value.strip() not in ("N/A", "NA"):
                record.fail(f"PK$NUM_PEAK is not a whole number: {value.strip()[:40]!r}", lineno)
            record.num_peaks, record.num_line = number, lineno
        elif not tag.startswith("PK$"):
            record.add(tag, value, lineno)
    if record is not None:
        yield SpectrumFormatError("record ends without '//' (file cut short?)", path, record.number, record.line)
