"""The rule step of rule_based agents: deterministic, no model, same transcript as a model."""

from __future__ import annotations

import time

from temporalio import activity

from p2engine.activities.transcript import Transcript
from p2engine.agents.rules import respond
from p2engine.contract.models import StepInput, StepResult
from p2engine.contract.names import RULE_STEP
from p2engine.contract.usage import Usage


class RuleActivities:
    def __init__(self, transcript: Transcript) -> None:
        self.transcript = transcript

    @activity.defn(name=RULE_STEP)
    async def rule_step(self, inp: StepInput) -> StepResult:
        started = time.perf_counter()
        prompt = await self.transcript.prompt(inp)
        reply = respond(inp.rules, inp.fallback_reply, prompt.messages)
        usage = Usage(latency_ms=(time.perf_counter() - started) * 1000)
        return await self.transcript.reply(inp, reply.text, reply.tool_calls, usage, model="rules")
