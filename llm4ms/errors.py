"""Errors a user can act on: each renders as one line naming where the problem is."""
from __future__ import annotations


class Llm4msError(Exception):
    """Base class: the CLI prints ``str(err)`` on one line and exits non-zero, no traceback."""


class SpectrumFormatError(Llm4msError):
    """A record in a spectrum file cannot be read.

    Carries the file, 1-based record number and 1-based line so the user can open the file there.
    """

    def __init__(self, message: str, path: str | None = None, record: int | None = None,
                 line: int | None = None) -> None:
        self.message = message
        self.path = path
        self.record = record
        self.line = line
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = []
        if self.path:
            where.append(str(self.path))
        if self.record is not None:
            where.append(f"record {self.record}")
        if self.line is not None:
            where.append(f"line {self.line}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class ModelMismatchError(Llm4msError):
    """An embedding store was built with a different model than the one asked to search it."""


class ConfigError(Llm4msError):
    """A configuration cannot be run here (missing file, unsupported option on this machine)."""
