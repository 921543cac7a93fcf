"""Configuration files: TOML read with tomllib, checked against a declared schema before any work.

A schema is a dataclass whose fields declare each setting's type, default and check:

    @dataclass(frozen=True)
    class Evolution:
        population_size: int = setting(1000, at_least(2), "individuals kept alive")
        mutate_prob: float = setting(0.9, between(0.0, 1.0))

    evolution = load("run.toml", Evolution)      # or from_table(Evolution, table, source)

Unknown keys, wrong types and impossible values raise ConfigError naming the file, the key as a
dotted path (`tasks[1].features`, indices from 0) and its line. tomllib gives no positions, so
TomlFile.line_of finds a key's line by scanning the text table by table.

Supported field types: bool, int, float (an integer is accepted), str, Literal[...], X | None,
list[X], tuple[X, ...], dict (a free table, not checked), and nested schema dataclasses (a
sub-table, or an array of tables for list[Schema]).
"""

import dataclasses
import difflib
import re
import tomllib
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from azc.errors import ConfigError

KeyPath = tuple  # of str (table keys) and int (array indices)


# --- declaring settings --------------------------------------------------------------------------


def setting(default=dataclasses.MISSING, check: Callable | None = None, help: str = ""):
    """A schema field: default (MISSING = required), a check returning a problem or None."""
    metadata = {"check": check, "help": help}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def at_least(low):
    return lambda value: None if value >= low else f"must be at least {low}, got {value}"


def between(low, high):
    """Inclusive range check."""
    return lambda value: (None if low <= value <= high
                          else f"must be between {low} and {high}, got {value}")


def each(check):
    """Apply a check to every element of a list."""

    def check_all(values):
        problems = ((i, check(value)) for i, value in enumerate(values))
        return next((f"element {i}: {problem}" for i, problem in problems if problem), None)

    return check_all


# --- reading files -------------------------------------------------------------------------------

_KEY_PART = r'(?:[A-Za-z0-9_-]+|"[^"]*"|\'[^\']*\')'
_DOTTED = rf"{_KEY_PART}(?:\s*\.\s*{_KEY_PART})*"
_ARRAY_HEADER = re.compile(rf"^\s*\[\[\s*({_DOTTED})\s*\]\]")
_TABLE_HEADER = re.compile(rf"^\s*\[\s*({_DOTTED})\s*\]")
_ASSIGNMENT = re.compile(rf"^\s*({_DOTTED})\s*=")


def _parts(dotted: str) -> tuple[str, ...]:
    return tuple(part.strip("\"'") for part in re.findall(_KEY_PART, dotted))


def dotted(path: KeyPath) -> str:
    """Display form of a key path: ("tasks", 1, "features") -> tasks[1].features."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


class TomlFile:
    """A parsed TOML file that remembers its text, to point errors at lines."""

    def __init__(self, path: str | Path, text: str, data: dict):
        self.path, self.text, self.data = str(path), text, data
        self._lines = None

    def line_of(self, path: KeyPath) -> int | None:
        """The line defining `path`, or of its nearest enclosing key or table; None if unknown."""
        if self._lines is None:
            self._lines = _index_lines(self.text)
        for end in range(len(path), 0, -1):
            if tuple(path[:end]) in self._lines:
                return self._lines[tuple(path[:end])]
        return None

    def error(self, path: KeyPath, message: str) -> ConfigError:
        line = self.line_of(path)
        where = f"{self.path}:{line}" if line else self.path
        return ConfigError(f"{where}: {dotted(path)}: {message}" if path else f"{where}: {message}")


def _index_lines(text: str) -> dict[KeyPath, int]:
    """Map each key path defined in the text to its first line (1-based).

    NOTE: a plain line scan, not a TOML parser: it follows [table] and [[array]] headers and
    `key =` lines; keys inside inline tables or multi-line values resolve to the enclosing key.
    """
    lines: dict[KeyPath, int] = {}
    array_counts: dict[KeyPath, int] = {}  # concrete path of an array of tables -> last index
    arrays: set[tuple[str, ...]] = set()  # header names declared with [[...]]
    table: KeyPath = ()

    def concrete(names: tuple[str, ...]) -> KeyPath:
        path: KeyPath = ()
        for end, name in enumerate(names, 1):
            path += (name,)
            if names[:end] in arrays and end < len(names) and path in array_counts:
                path += (array_counts[path],)
        return path

    for number, line in enumerate(text.splitlines(), 1):
        if match := _ARRAY_HEADER.match(line):
            names = _parts(match.group(1))
            arrays.add(names)
            parent = concrete(names)
            array_counts[parent] = array_counts.get(parent, -1) + 1
            table = parent + (array_counts[parent],)
            lines.setdefault(parent, number)
        elif match := _TABLE_HEADER.match(line):
            table = concrete(_parts(match.group(1)))
        elif match := _ASSIGNMENT.match(line):
            number_path = table + _parts(match.group(1))
            lines.setdefault(number_path, number)
            continue
        else:
            continue
        lines.setdefault(table, number)
    return lines


def read_toml(path: str | Path) -> TomlFile:
    """Read and parse a TOML file; a missing file or a syntax error is a ConfigError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a TOML file") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: cannot read: {error}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        found = re.search(r"\(at line (\d+), column \d+\)", message)
        where = f"{path}:{found.group(1)}" if found else str(path)
        reason = message[: found.start()].strip() if found else message
        raise ConfigError(f"{where}: invalid TOML: {reason}") from None
    return TomlFile(path, text, data)


# --- validating ----------------------------------------------------------------------------------


class _Flags(TomlFile):
    """Stand-in source for tables that come from the command line or code, not a file."""

    def __init__(self, name: str):
        super().__init__(name, "", {})

    def error(self, path: KeyPath, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: {dotted(path)}: {message}" if path else message)


def _kind_name(value) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "an array", dict: "a table"}
    return names.get(type(value), type(value).__name__)


def _describe(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(arg) for arg in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in args if arg is not type(None))
    if origin in (list, tuple):
        element = _describe(args[0])
        if element.startswith("one of"):
            return f"an array of values, each {element}"
        noun, _, rest = element.removeprefix("an ").removeprefix("a ").partition(" ")
        return f"an array of {noun}s {rest}".rstrip()
    if dataclasses.is_dataclass(hint):
        return "a table"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            dict: "a table"}.get(hint, str(hint))


def _convert(value, hint, source: TomlFile, path: KeyPath):
    """Check `value` against the type hint and return it in the field's Python form."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    wrong = source.error(path, f"expected {_describe(hint)}, got {_kind_name(value)} {value!r}")

    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, source, path)
            except ConfigError as error:
                errors.append(error)
        # One candidate (an optional table): its own error names the key inside that failed.
        raise errors[0] if len(errors) == 1 else wrong
    if origin is Literal:
        if value in args and type(value) in {type(arg) for arg in args}:
            return value
        raise wrong
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise wrong
        items = [_convert(item, args[0], source, path + (i,)) for i, item in enumerate(value)]
        return items if origin is list else tuple(items)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise wrong
        return from_table(hint, value, source, path)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is dict and isinstance(value, dict):
        return value
    if isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    raise wrong


def from_table(cls, table: dict, source: TomlFile | str | None = None, where: KeyPath = ()):
    """Validate a table into an instance of the schema dataclass `cls`.

    Every problem is a ConfigError naming the source, key path and line: unknown keys first,
    then missing required keys, wrong types and failed checks, in field order.
    """
    if source is None or isinstance(source, str):
        source = _Flags(source or "settings")
    fields = {field.name: field for field in dataclasses.fields(cls) if field.init}
    hints = typing.get_type_hints(cls)

    # Unknown keys are the likeliest typos: report them before anything else.
    for key in table:
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            known = ", ".join(fields)
            raise source.error(where + (key,), f"unknown key{hint}; known keys: {known}")

    values = {}
    for name, field in fields.items():
        path = where + (name,)
        if name not in table:
            required = (field.default is dataclasses.MISSING
                        and field.default_factory is dataclasses.MISSING)
            if required:
                raise source.error(path, "missing required key")
            continue
        value = _convert(table[name], hints[name], source, path)
        check = field.metadata.get("check")
        problem = check(value) if check and value is not None else None
        if problem:
            raise source.error(path, problem)
        values[name] = value

    try:
        return cls(**values)
    except FieldError as error:  # a cross-field check that blames one key
        raise source.error(where + (error.key,), error.message) from None
    except ValueError as error:  # cross-field checks in __post_init__
        raise source.error(where, str(error)) from None


class FieldError(ValueError):
    """A cross-field check in __post_init__ that names the key at fault (its line is shown)."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key, self.message = key, message


def load(path: str | Path, cls, table: str | None = None):
    """Read a TOML file and validate it (or one of its top-level tables) into `cls`."""
    document = read_toml(path)
    data = document.data if table is None else document.data.get(table, {})
    return from_table(cls, data, document, () if table is None else (table,))


def describe_schema(cls) -> list[tuple[str, str, Any, str]]:
    """(key, type, default, help) for each setting of a schema: for docs and `--help` text."""
    hints = typing.get_type_hints(cls)
    rows = []
    for field in dataclasses.fields(cls):
        default = (field.default if field.default_factory is dataclasses.MISSING
                   else field.default_factory())
        shown = "required" if default is dataclasses.MISSING else default
        rows.append((field.name, _describe(hints[field.name]), shown,
                     field.metadata.get("help", "")))
    return rows
