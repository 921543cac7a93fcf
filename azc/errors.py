"""Errors a user can cause: each carries a message fit to print as it is.

The CLI prints these without a traceback and exits with status 2; anything else is a bug.
"""


class AzcError(Exception):
    """Bad input: a program, a task, a data file or an experiment that cannot be used."""


class ParseError(AzcError):
    """A program's text is not valid azc; the message points at the line and column."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.line = line
        self.column = column


class DataError(AzcError):
    """A data file is missing, unreadable or malformed."""


class ConfigError(AzcError):
    """An experiment or task file asks for something invalid."""
