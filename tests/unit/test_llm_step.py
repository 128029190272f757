"""The model step as the worker runs it (activities/llm.py), with the scripted model."""

from __future__ import annotations

import asyncio
from pathlib import Path

import litellm
import pytest
from litellm.integrations.custom_logger import CustomLogger
from temporalio.testing import ActivityEnvironment

from p2engine.activities.llm import LlmActivities
from p2engine.activities.transcript import Transcript
from p2engine.agents.config import ScriptedModelSettings
from p2engine.agents.personas import PersonaLibrary
from p2engine.contract.agent_config import AgentConfig
from p2engine.contract.models import ContentNode, StepInput
from p2engine.contract.states import State
from p2engine.runtime.settings import PROJECT_ROOT
from p2engine.runtime.telemetry import read_spans
from p2engine.store.artifacts import LocalArtifactStore
from tests.unit.test_tracing import recording

PERSONAS = PersonaLibrary(PROJECT_ROOT / "config" / "personas")


def question(text: str) -> StepInput:
    node = ContentNode(
        kind=State.USER_MESSAGE, parent=None, conversation_id="c", step=0, agent_id="a", text=text
    )
    return StepInput(
        conversation_id="c",
        agent_id="a",
        step=1,
        model="scripted/default",
        head=node.ref(),
        pending=[node],
        tools=["get_weather"],
    )


def step(tmp_path: Path, cost_per_1k_tokens: float = 0.0) -> LlmActivities:
    transcript = Transcript(LocalArtifactStore(tmp_path), PERSONAS)
    return LlmActivities(transcript, ScriptedModelSettings(cost_per_1k_tokens=cost_per_1k_tokens))


async def test_usage_and_cost_come_back_from_the_model(tmp_path: Path) -> None:
    result = await ActivityEnvironment().run(
        step(tmp_path, cost_per_1k_tokens=1.0).llm_step, question("weather in Paris?")
    )
    assert [c.name for c in result.tool_calls] == ["get_weather"]
    usage = result.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.cost_usd == pytest.approx(usage.total_tokens / 1000)


async def test_a_registered_litellm_callback_still_sees_every_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[object] = []

    class Recorder(CustomLogger):
        async def async_log_success_event(self, *args: object, **kwargs: object) -> None:
            seen.append(kwargs or args)

    monkeypatch.setattr(litellm, "callbacks", [Recorder()])
    await ActivityEnvironment().run(step(tmp_path).llm_step, question("hello"))
    for _ in range(50):
        if seen:
            break
        await asyncio.sleep(0.01)
    assert seen


async def test_a_step_by_ref_runs_the_configs_knobs_and_its_span_names_the_config(
    tmp_path: Path,
) -> None:
    config = AgentConfig(
        agent_id="a", tools=("get_weather",), model="scripted/default", temperature=0.3
    )
    spans = recording(tmp_path / "spans.jsonl")
    store = LocalArtifactStore(tmp_path / "store")
    activities = LlmActivities(Transcript(store, PERSONAS), ScriptedModelSettings(), spans)
    inline = question("weather in Paris?").model_copy(
        update={"tools": [], "config_ref": config.ref, "config": config}
    )
    result = await ActivityEnvironment().run(activities.llm_step, inline)
    assert [c.name for c in result.tool_calls] == ["get_weather"]  # the config's tools
    [span] = read_spans(tmp_path / "spans.jsonl")
    assert span["attributes"]["p2e.config"] == config.id
    assert span["attributes"]["gen_ai.request.temperature"] == 0.3
