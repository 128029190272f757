"""Runs one tool call. Failures the model can act on (bad arguments, unknown city) come back
as an `error` outcome for the model to read; only unexpected exceptions are retried.

Side-effect-free tools with a `cache_ttl` are answered from the tool cache when the same
arguments were used within the TTL."""

from __future__ import annotations

import json

from pydantic import ValidationError
from temporalio import activity

from p2engine.activities.tracing import NO_SPANS, Spans
from p2engine.agents.tools import ToolError, get_tool
from p2engine.agents.tools.registry import ToolContext, ToolServices, invalid_arguments
from p2engine.contract.ids import business_key
from p2engine.contract.models import ToolInput, ToolOutcome, ToolStatus, preview
from p2engine.contract.names import RUN_TOOL
from p2engine.store.base import ArtifactStore, ToolCache
from p2engine.store.tool_cache import cache_key


class ToolActivities:
    def __init__(
        self,
        store: ArtifactStore,
        cache: ToolCache,
        services: ToolServices | None = None,
        spans: Spans = NO_SPANS,
    ) -> None:
        self.store = store
        self.cache = cache
        self.services = services or ToolServices()
        self.spans = spans

    @activity.defn(name=RUN_TOOL)
    async def run_tool(self, inp: ToolInput) -> ToolOutcome:
        with self.spans.tool(inp.call) as span:
            outcome = await self._run(inp)
            self.spans.tool_result(span, outcome.status, outcome.preview)
        if inp.result_parent is not None:  # content-addressed: a retry stores nothing new
            await self.store.put_node(inp.result_node(outcome))
        return outcome

    async def _run(self, inp: ToolInput) -> ToolOutcome:
        try:
            tool = get_tool(inp.call.name)
            arguments = tool.input_model.model_validate_json(inp.call.arguments or "{}")
        except ToolError as exc:
            return await self._outcome("error", json.dumps({"error": str(exc)}))
        except ValidationError as exc:
            return await self._outcome("error", json.dumps({"error": invalid_arguments(exc)}))
        ttl_s = tool.cache_ttl_s
        key = cache_key(tool.name, arguments.model_dump_json()) if ttl_s is not None else ""
        if ttl_s is not None and (ref := await self.cache.get(key)) is not None:
            text = await self.store.get_text(ref)
            return ToolOutcome(status="ok", result_ref=ref, preview=preview(text), cached=True)
        context = ToolContext(
            agent_id=inp.agent_id,
            conversation_id=inp.conversation_id,
            step=inp.step,
            business_key=inp.call_key or _recorded_business_key(inp),
            services=self.services,
        )
        try:
            content = json.dumps(await tool.call(arguments, context), sort_keys=True)
        except ToolError as exc:
            return await self._outcome("error", json.dumps({"error": str(exc)}))
        outcome = await self._outcome("ok", content)
        if ttl_s is not None and outcome.result_ref is not None:
            await self.cache.put(key, outcome.result_ref, ttl_s)
        return outcome

    async def _outcome(self, status: ToolStatus, content: str) -> ToolOutcome:
        return ToolOutcome(
            status=status, result_ref=await self.store.put_text(content), preview=preview(content)
        )


def _recorded_business_key(inp: ToolInput) -> str:
    """A key for a call recorded before workflows made one: unique to this run and call."""
    run_id = (activity.info().workflow_run_id or "") if activity.in_activity() else ""
    return business_key(inp.conversation_id, run_id, inp.step, inp.call.id)
