"""Config layer: TOML schemas, errors that name file, key and line."""

from dataclasses import dataclass, field
from typing import Literal

import pytest

from azc.config import (
    at_least,
    between,
    describe_schema,
    each,
    from_table,
    load,
    read_toml,
    setting,
)
from azc.errors import ConfigError


@dataclass(frozen=True)
class Inner:
    name: str = setting()
    weight: float = setting(1.0, between(0.0, 1.0))


@dataclass(frozen=True)
class Outer:
    size: int = setting(10, at_least(1), "how many")
    mode: Literal["mean", "median"] = setting("mean")
    seeds: list[int] = setting([])
    pair: tuple[int, ...] | None = setting(None)
    inner: Inner = field(default_factory=lambda: Inner("x"))
    items: list[Inner] = setting([])
    free: dict = setting({})


def write(tmp_path, text, name="c.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(tmp_path, text):
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, text), Outer)
    return str(info.value)


def test_defaults_and_values(tmp_path):
    text = """
size = 3
seeds = [1, 2]
pair = [4, 6]

[inner]
name = "a"
weight = 0      # an integer where a float is expected is fine

[[items]]
name = "b"

[free]
anything = "goes"
"""
    outer = load(write(tmp_path, text), Outer)
    assert outer.size == 3 and outer.mode == "mean" and outer.seeds == [1, 2]
    assert outer.pair == (4, 6)
    assert outer.inner == Inner("a", 0.0) and isinstance(outer.inner.weight, float)
    assert outer.items == [Inner("b")]
    assert outer.free == {"anything": "goes"}


def test_unknown_key_names_file_line_and_suggestion(tmp_path):
    message = error_of(tmp_path, "size = 3\n\nszie = 4\n")
    assert "c.toml:3:" in message and "szie" in message and "did you mean 'size'" in message


def test_wrong_type(tmp_path):
    message = error_of(tmp_path, 'mode = "mean"\nsize = "ten"\n')
    assert "c.toml:2: size: expected an integer, got a string 'ten'" in message


def test_bool_is_not_an_integer(tmp_path):
    assert "expected an integer" in error_of(tmp_path, "size = true\n")


def test_check_failure(tmp_path):
    assert "c.toml:1: size: must be at least 1, got 0" in error_of(tmp_path, "size = 0\n")


def test_literal(tmp_path):
    assert "one of 'mean', 'median'" in error_of(tmp_path, 'mode = "mode"\n')


def test_nested_table_line(tmp_path):
    message = error_of(tmp_path, '[inner]\nname = "a"\nweight = 2.5\n')
    assert "c.toml:3: inner.weight: must be between 0.0 and 1.0, got 2.5" in message


def test_array_of_tables_line(tmp_path):
    text = '[[items]]\nname = "a"\n\n[[items]]\nname = "b"\nweight = -1\n'
    message = error_of(tmp_path, text)
    assert "c.toml:6: items[1].weight" in message


def test_missing_required_key_points_at_table(tmp_path):
    message = error_of(tmp_path, "[[items]]\nweight = 0.5\n")
    assert "c.toml:1: items[0].name: missing required key" in message


def test_list_element_type(tmp_path):
    message = error_of(tmp_path, 'seeds = [1, "two"]\n')
    assert "c.toml:1: seeds[1]: expected an integer" in message


def test_syntax_error_gives_line(tmp_path):
    message = error_of(tmp_path, "size = 3\nmode = \n")
    assert "c.toml:2: invalid TOML" in message


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        read_toml(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match=r"is a directory, not a TOML file$"):
        read_toml(tmp_path)


def test_from_table_without_file():
    with pytest.raises(ConfigError, match="flags: size: must be at least 1"):
        from_table(Outer, {"size": 0}, "flags")


def test_describe_schema():
    rows = {row[0]: row for row in describe_schema(Outer)}
    assert rows["size"] == ("size", "an integer", 10, "how many")
    assert rows["seeds"][2] == []


def test_each_names_the_element():
    @dataclass(frozen=True)
    class Seeds:
        seeds: list[int] = setting([], each(at_least(0)))

    with pytest.raises(ConfigError, match=r"seeds: element 2: must be at least 0, got -1"):
        from_table(Seeds, {"seeds": [0, 1, -1]})


def test_lines_of_dotted_and_inline_keys(tmp_path):
    text = 'size = 2\ninner.name = "a"\ninner.weight = 3.0\n'
    with pytest.raises(ConfigError, match=r"c.toml:3: inner.weight: must be between"):
        load(write(tmp_path, text), Outer)
    text = 'size = 2\ninner = { name = "a", weight = 3.0 }\n'
    with pytest.raises(ConfigError, match=r"c.toml:2: inner.weight: must be between"):
        load(write(tmp_path, text), Outer)


def test_headers_with_quotes_and_spaces(tmp_path):
    text = 'size = 2\n[ "inner" ]\nname = "a"\nweight = -1\n'
    with pytest.raises(ConfigError, match=r"c.toml:4: inner.weight"):
        load(write(tmp_path, text), Outer)
