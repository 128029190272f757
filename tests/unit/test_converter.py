"""The data converter writes no field that holds its default, and reads back what it wrote
and what the plain pydantic converter wrote before it."""

from __future__ import annotations

import json

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

from p2engine.contract.models import ConversationResult, StackEntry
from p2engine.contract.states import State
from p2engine.contract.usage import Usage
from p2engine.runtime.converter import DATA_CONVERTER

RESULT = ConversationResult(
    conversation_id="conv-a-1",
    agent_id="a",
    reason="done",
    steps=2,
    usage=Usage(prompt_tokens=3),
    stack=[
        StackEntry(step=0, kind=State.USER_MESSAGE, agent_id="a", preview="hi"),
        StackEntry(step=1, kind=State.ASSISTANT_MESSAGE, agent_id="a", cached=True),
    ],
)


async def test_a_field_at_its_default_is_not_written() -> None:
    [payload] = await DATA_CONVERTER.encode([RESULT])
    written = json.loads(payload.data)
    assert written["stack"][0] == {
        "step": 0,
        "kind": "UserMessage",
        "agent_id": "a",
        "preview": "hi",
    }
    assert written["stack"][1]["cached"] is True  # not the default: written
    assert written["usage"] == {"prompt_tokens": 3}


@pytest.mark.parametrize(
    "writer", [DATA_CONVERTER, pydantic_data_converter], ids=["compact", "plain"]
)
async def test_what_either_converter_wrote_reads_back_the_same(writer: DataConverter) -> None:
    payloads = await writer.encode([RESULT])
    [read] = await DATA_CONVERTER.decode(payloads, [ConversationResult])
    assert read == RESULT
