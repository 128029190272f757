"""The scripted model obeys the instructions it recognises in its system prompt, in its final
answer only (agents/scripted.py), so a better prompt gives a measurably better answer."""

from __future__ import annotations

import json
from typing import Any, cast

import litellm
import pytest

from p2engine.agents.scripted import Instructions, obey, read_instructions, respond
from p2engine.agents.tools import get_tool
from p2engine.agents.tools.registry import ToolError
from p2engine.agents.tools.weather import WeatherArgs, get_weather
from p2engine.agents.turn import openai_tool_call

TOOLS = {"get_weather": get_tool("get_weather").schema()["function"]}
PARIS_AND_TOKYO = "What's the weather in Paris and Tokyo?"
PARIS_THEN_TOKYO = (
    "In Paris it is 15°C and partly cloudy (humidity 68%). "
    "In Tokyo it is 18°C and light rain (humidity 72%)."
)
GREETING = "Hello! I am an offline scripted model. Ask me about the weather in a city."


def converse(
    system: str | None, question: str, history: list[dict[str, Any]] | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """The scripted model's final answer to `question`, running get_weather for real, and
    the whole transcript."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    messages += [*(history or []), {"role": "user", "content": question}]
    while (reply := respond(messages, TOOLS)).text is None:
        call = reply.tool_calls[0]
        try:
            result = cast(dict[str, object], get_weather(WeatherArgs(**json.loads(call.arguments))))
        except ToolError as exc:
            result = {"error": str(exc)}
        messages += [
            {"role": "assistant", "content": None, "tool_calls": [openai_tool_call(call)]},
            {"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)},
        ]
    messages.append({"role": "assistant", "content": reply.text})
    return reply.text, messages


def answer(system: str | None, question: str) -> str:
    return converse(system, question)[0]


@pytest.mark.parametrize(
    "system",
    [
        None,
        "You are a helpful weather assistant.",
        # unrecognised: other languages, spelled-out numbers, other phrasings
        "Answer in French. Use at most twenty words. Mention where the data comes from. "
        "Use Kelvin. Write a table.",
    ],
)
def test_without_a_recognised_instruction_answers_are_as_before(system: str | None) -> None:
    assert read_instructions(system or "") == Instructions()
    assert answer(system, PARIS_AND_TOKYO) == PARIS_THEN_TOKYO
    assert answer(system, "hi there") == GREETING
    assert answer(system, "what is 6 * 7") == "6 * 7 = 42."
    assert answer(system, "What's the weather in Atlantis?") == (
        "I could not use get_weather: no weather data for 'Atlantis'; known cities include "
        "Paris, Tokyo"
    )


@pytest.mark.parametrize("said", ["Answer as a bullet list.", "Give one line per city."])
def test_a_bullet_list_puts_each_fact_on_its_own_line(said: str) -> None:
    assert answer(said, PARIS_AND_TOKYO) == (
        "- In Paris it is 15°C and partly cloudy (humidity 68%).\n"
        "- In Tokyo it is 18°C and light rain (humidity 72%)."
    )
    assert answer(said, "hello") == (
        "- Hello!\n- I am an offline scripted model.\n- Ask me about the weather in a city."
    )


@pytest.mark.parametrize("said", ["Give temperatures in Fahrenheit.", "Report them in °F."])
def test_fahrenheit_converts_every_celsius_temperature(said: str) -> None:
    assert answer(said, PARIS_AND_TOKYO) == (
        "In Paris it is 59°F and partly cloudy (humidity 68%). "
        "In Tokyo it is 64°F and light rain (humidity 72%)."
    )


def test_fahrenheit_is_rounded_half_up() -> None:
    told = Instructions(units="fahrenheit")
    assert obey(told, ["It is 12.5°C, then -17.5°C."], []) == "It is 55°F, then 1°F."


@pytest.mark.parametrize(
    "said", ["Give temperatures in both units.", "Use Celsius and Fahrenheit."]
)
def test_both_units_keeps_celsius_and_adds_fahrenheit(said: str) -> None:
    assert answer(said, "What's the weather in Paris?") == (
        "In Paris it is 15°C (59°F) and partly cloudy (humidity 68%)."
    )


def test_of_two_unit_instructions_the_one_written_last_wins() -> None:
    both, fahrenheit = "Give temperatures in both units.", "Give temperatures in Fahrenheit."
    assert read_instructions(f"{both} {fahrenheit}").units == "fahrenheit"
    assert read_instructions(f"{fahrenheit} {both}").units == "both"


@pytest.mark.parametrize(
    "said", ["Answer in at most 5 words.", "Use no more than 5 words.", "Keep it under 5 words."]
)
def test_a_word_limit_cuts_the_answer_ending_with_a_full_stop(said: str) -> None:
    assert answer(said, PARIS_AND_TOKYO) == "In Paris it is 15°C."


def test_a_cut_across_facts_keeps_whole_ones_and_closes_no_parenthesis_open() -> None:
    assert answer("Answer in at most 12 words.", PARIS_AND_TOKYO) == (
        "In Paris it is 15°C and partly cloudy (humidity 68%). In Tokyo."
    )
    # the ninth word opens "(humidity": the cut drops it rather than leave it open
    assert answer("Answer in at most 9 words.", PARIS_AND_TOKYO) == (
        "In Paris it is 15°C and partly cloudy."
    )


def test_a_short_enough_answer_is_untouched_and_the_smallest_limit_wins() -> None:
    assert answer("Answer in at most 50 words.", PARIS_AND_TOKYO) == PARIS_THEN_TOKYO
    told = "Answer in at most 30 words. Keep it under 5 words."
    assert read_instructions(told).max_words == 5


@pytest.mark.parametrize("said", ["Cite the tool you used.", "Always name your source."])
def test_citing_names_the_tools_the_conversation_used(said: str) -> None:
    assert answer(said, PARIS_AND_TOKYO) == f"{PARIS_THEN_TOKYO} (source: get_weather)"
    assert answer(said, "hello") == f"{GREETING} (source: none)"


def test_the_source_is_every_tool_of_the_conversation_not_only_this_turn() -> None:
    _, earlier = converse(None, "What's the weather in Oslo?")
    text, _ = converse("Cite the tool you used.", "hello", history=earlier)
    assert text == f"{GREETING} (source: get_weather)"


COMPOSED = (
    "- In Paris it is 59°F and partly cloudy (humidity 68%).\n"
    "- In Tokyo it is 64°F and light rain (humidity 72%).\n"
    "- In Oslo it is 39°F. (source: get_weather)"
)
ALL_FOUR = [
    "Cite the tool you used.",
    "Answer in at most 25 words.",
    "Give temperatures in Fahrenheit.",
    "Answer as a bullet list.",
]


@pytest.mark.parametrize("sentences", [ALL_FOUR, ALL_FOUR[::-1]])
def test_instructions_compose_in_a_fixed_order_whatever_order_they_are_written(
    sentences: list[str],
) -> None:
    """Format, units, length, then the citation: the source note is never cut."""
    system = "You are a weather assistant. " + " ".join(sentences)
    assert answer(system, "What's the weather in Paris, Tokyo and Oslo?") == COMPOSED


def test_instructions_never_change_tool_calls() -> None:
    messages = [
        {"role": "system", "content": " ".join(ALL_FOUR)},
        {"role": "user", "content": PARIS_AND_TOKYO},
    ]
    reply = respond(messages, TOOLS)
    assert reply.text is None
    assert [(c.name, json.loads(c.arguments)) for c in reply.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]


@pytest.mark.usefixtures("scripted")
async def test_instructions_are_obeyed_through_litellm() -> None:
    response = await litellm.acompletion(
        model="scripted/default",
        messages=[
            {"role": "system", "content": "Answer as a bullet list. Cite the tool you used."},
            {"role": "user", "content": "hello"},
        ],
        num_retries=0,
    )
    assert response.choices[0].message.content == (
        "- Hello!\n- I am an offline scripted model.\n"
        "- Ask me about the weather in a city. (source: none)"
    )
