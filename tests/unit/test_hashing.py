"""The canonical tool-call arguments (contract/hashing.py) both call keys are built on."""

from __future__ import annotations

from p2engine.contract.hashing import arguments_digest, canonical_arguments
from p2engine.store.tool_cache import cache_key


def test_spacing_and_key_order_do_not_matter() -> None:
    assert canonical_arguments('{ "b": 1,\n "a": [1, 2] }') == '{"a":[1,2],"b":1}'
    assert arguments_digest('{"a": 1, "b": 2}') == arguments_digest('{"b":2,"a":1}')


def test_empty_arguments_are_an_empty_object() -> None:
    assert canonical_arguments("") == canonical_arguments(" { } ") == "{}"


def test_text_that_is_not_json_stays_as_written() -> None:
    assert canonical_arguments("{not json") == "{not json"
    assert arguments_digest("{not json") != arguments_digest("{not json!")


def test_an_integer_too_long_to_read_is_kept_as_text() -> None:
    long = '{"n": ' + "9" * 5000 + "}"
    assert canonical_arguments(long) == long


def test_the_tool_cache_key_names_the_tool_and_the_canonical_arguments() -> None:
    assert cache_key("get_weather", '{"city": "Paris"}') == cache_key(
        "get_weather", '{ "city":"Paris" }'
    )
    assert cache_key("get_weather", "{}").startswith("get_weather:")
    assert cache_key("get_weather", "{}") != cache_key("other", "{}")
