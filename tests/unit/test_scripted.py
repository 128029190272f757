"""The offline scripted model's rules (agents/scripted.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from p2engine.agents.scripted import (
    ScriptedFailure,
    ScriptedReply,
    estimate_tokens,
    respond,
)
from p2engine.agents.tools import get_tool
from p2engine.contract.models import ToolCallRequest


def offered(*names: str) -> dict[str, dict[str, Any]]:
    """The tools argument of respond(): name -> OpenAI function schema."""
    return {name: get_tool(name).schema()["function"] for name in names}


WEATHER = offered("get_weather")
WEATHER_AND_DELEGATE = offered("get_weather", "delegate")
NO_TOOLS: dict[str, dict[str, Any]] = {}


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def assistant_call(call: ToolCallRequest) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
        ],
    }


def tool_result(call_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": json.dumps(payload)}


def weather(city: str, temperature: float, condition: str, humidity: int) -> dict[str, Any]:
    return {
        "city": city,
        "temperature": temperature,
        "unit": "celsius",
        "condition": condition,
        "humidity": humidity,
    }


def only_call(reply: ScriptedReply) -> ToolCallRequest:
    assert reply.text is None
    assert len(reply.tool_calls) == 1
    return reply.tool_calls[0]


def test_weather_question_calls_get_weather_for_the_city() -> None:
    reply = respond([user("What's the weather in Paris?")], WEATHER)
    call = only_call(reply)
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"}


def test_weather_question_without_the_tool_says_so_and_calls_nothing() -> None:
    reply = respond([user("What's the weather in Paris?")], NO_TOOLS)
    assert reply.tool_calls == []
    assert reply.text is not None
    assert "no 'get_weather' tool" in reply.text


def test_multi_city_weather_calls_one_city_per_step_then_answers() -> None:
    messages = [user("What's the weather in Tokyo and Oslo?")]
    first = only_call(respond(messages, WEATHER))
    assert first.name == "get_weather"
    assert json.loads(first.arguments) == {"city": "Tokyo"}

    messages += [
        assistant_call(first),
        tool_result(first.id, weather("Tokyo", 18, "light rain", 72)),
    ]
    second = only_call(respond(messages, WEATHER))
    assert second.name == "get_weather"
    assert json.loads(second.arguments) == {"city": "Oslo"}

    messages += [
        assistant_call(second),
        tool_result(second.id, weather("Oslo", 4, "cloudy", 74)),
    ]
    answer = respond(messages, WEATHER)
    assert answer.tool_calls == []
    assert answer.text is not None
    assert "Tokyo" in answer.text
    assert "18°C" in answer.text
    assert "Oslo" in answer.text
    assert "4°C" in answer.text


def test_tool_error_result_is_reported_in_text() -> None:
    messages = [user("What's the weather in Atlantis?")]
    call = only_call(respond(messages, WEATHER))
    messages += [
        assistant_call(call),
        tool_result(call.id, {"error": "no weather data for 'Atlantis'"}),
    ]
    reply = respond(messages, WEATHER)
    assert reply.tool_calls == []
    assert reply.text is not None
    assert "could not use get_weather" in reply.text
    assert "no weather data for 'Atlantis'" in reply.text


def test_delegation_calls_the_delegate_tool() -> None:
    reply = respond([user("delegate to agent_helper: what's up")], offered("delegate"))
    call = only_call(reply)
    assert call.name == "delegate"
    assert json.loads(call.arguments) == {"agent_id": "agent_helper", "message": "what's up"}


def test_explicit_call_passes_raw_arguments_unchanged() -> None:
    reply = respond([user('call get_weather with {"town": 1}')], WEATHER)
    call = only_call(reply)
    assert call.name == "get_weather"
    assert call.arguments == '{"town": 1}'


def test_simulated_error_raises_scripted_failure_with_status() -> None:
    with pytest.raises(ScriptedFailure) as info:
        respond([user("simulate error 429")], WEATHER)
    assert info.value.status_code == 429


def test_arithmetic_is_answered() -> None:
    reply = respond([user("what is 6 * 7")], NO_TOOLS)
    assert reply.tool_calls == []
    assert reply.text is not None
    assert "42" in reply.text


def test_greeting_gets_a_greeting() -> None:
    reply = respond([user("hello")], NO_TOOLS)
    assert reply.tool_calls == []
    assert reply.text is not None
    assert reply.text.startswith("Hello")


def test_same_input_gives_same_output() -> None:
    for text in ("What's the weather in Paris?", "hello", "what is 6 * 7", "anything else"):
        assert respond([user(text)], WEATHER) == respond([user(text)], WEATHER)


def test_tool_call_ids_differ_between_positions() -> None:
    messages = [user("What's the weather in Tokyo and Oslo?")]
    first = only_call(respond(messages, WEATHER))
    messages += [
        assistant_call(first),
        tool_result(first.id, weather("Tokyo", 18, "light rain", 72)),
    ]
    second = only_call(respond(messages, WEATHER))
    assert first.id != second.id


def test_estimate_tokens_is_at_least_one() -> None:
    assert estimate_tokens("") >= 1


def test_estimate_tokens_grows_with_length() -> None:
    assert estimate_tokens("a" * 400) > estimate_tokens("a" * 40) > estimate_tokens("")


# --- tools offered, delegation first, explicit calls, argument correction -------------------


def test_delegation_is_checked_before_weather() -> None:
    question = "Delegate to agent_helper: what's the weather in Tokyo?"
    call = only_call(respond([user(question)], WEATHER_AND_DELEGATE))
    assert call.name == "delegate"
    assert json.loads(call.arguments) == {
        "agent_id": "agent_helper",
        "message": "what's the weather in Tokyo?",
    }


def test_delegation_without_the_delegate_tool_says_so_and_calls_nothing() -> None:
    reply = respond([user("delegate to agent_helper: what's up")], WEATHER)
    assert reply.tool_calls == []
    assert reply.text is not None
    assert "no 'delegate' tool" in reply.text


def test_delegate_result_is_reported_as_what_the_agent_says() -> None:
    messages = [user("Delegate to agent_helper: what's the weather in Tokyo?")]
    call = only_call(respond(messages, WEATHER_AND_DELEGATE))
    answer = "In Tokyo it is 18°C and light rain."
    messages += [
        assistant_call(call),
        tool_result(call.id, {"agent_id": "agent_helper", "status": "done", "answer": answer}),
    ]
    reply = respond(messages, WEATHER_AND_DELEGATE)
    assert reply.tool_calls == []
    assert reply.text == f"agent_helper says: {answer}"


def test_explicit_call_is_made_even_when_the_tool_is_not_offered() -> None:
    reply = respond([user('call get_weather with {"city": "Paris"}')], NO_TOOLS)
    call = only_call(reply)
    assert call.name == "get_weather"
    assert call.arguments == '{"city": "Paris"}'


def test_explicit_call_n_times_makes_one_call_per_step_then_answers() -> None:
    messages = [user('call get_weather 3 times with {"city": "Paris"}')]
    calls: list[ToolCallRequest] = []
    for _ in range(3):
        call = only_call(respond(messages, WEATHER))
        assert call.name == "get_weather"
        assert call.arguments == '{"city": "Paris"}'
        calls.append(call)
        messages += [
            assistant_call(call),
            tool_result(call.id, weather("Paris", 15, "partly cloudy", 68)),
        ]
    assert len({c.id for c in calls}) == 3
    final = respond(messages, WEATHER)
    assert final.tool_calls == []
    assert final.text is not None
    assert "Paris" in final.text


MALFORMED = '{"town": "Paris"}'


def rejected_call_transcript() -> tuple[list[dict[str, Any]], ToolCallRequest]:
    messages = [user(f"call get_weather with {MALFORMED}")]
    call = only_call(respond(messages, WEATHER))
    assert call.arguments == MALFORMED
    messages += [
        assistant_call(call),
        tool_result(call.id, {"error": "invalid arguments: city: Field required"}),
    ]
    return messages, call


def test_rejected_arguments_are_retried_with_unknown_keys_moved_to_required_ones() -> None:
    messages, first = rejected_call_transcript()
    retry = only_call(respond(messages, WEATHER))
    assert retry.name == "get_weather"
    assert json.loads(retry.arguments) == {"city": "Paris"}
    assert retry.id != first.id


def test_after_a_corrected_call_the_answer_describes_only_the_successful_result() -> None:
    messages, _ = rejected_call_transcript()
    retry = only_call(respond(messages, WEATHER))
    messages += [
        assistant_call(retry),
        tool_result(retry.id, weather("Paris", 15, "partly cloudy", 68)),
    ]
    final = respond(messages, WEATHER)
    assert final.tool_calls == []
    assert final.text == "In Paris it is 15°C and partly cloudy (humidity 68%)."


def test_a_list_of_arguments_makes_all_calls_in_one_step() -> None:
    reply = respond([user('call get_weather with [{"city": "Paris"}, {"city": "Oslo"}]')], WEATHER)

    assert reply.text is None
    assert [json.loads(c.arguments) for c in reply.tool_calls] == [
        {"city": "Paris"},
        {"city": "Oslo"},
    ]
    assert len({c.id for c in reply.tool_calls}) == 2
    answer = respond(
        [
            user('call get_weather with [{"city": "Paris"}, {"city": "Oslo"}]'),
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments},
                    }
                    for c in reply.tool_calls
                ],
            },
            tool_result(reply.tool_calls[0].id, weather("Paris", 15, "partly cloudy", 68)),
            tool_result(reply.tool_calls[1].id, weather("Oslo", 4, "cloudy", 74)),
        ],
        WEATHER,
    )
    assert answer.tool_calls == []
    assert answer.text is not None
    assert answer.text.index("Paris") < answer.text.index("Oslo")
