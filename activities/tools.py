"""Runs one tool call. Failures the model can act on (bad arguments, unknown city) come back
as an `error` outcome for the model to read; only unexpected exceptions are retried."""

from __future__ import annotations

import json

from pydantic import ValidationError
from temporalio import activity

from activities.names import RUN_TOOL
from agents.tools import ToolError, get_tool
from runtime.artifacts import ArtifactStore
from workflows.models import ToolInput, ToolOutcome, preview


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "arguments"
        parts.append(f"{where}: {error['msg']}")
    return "invalid arguments: " + "; ".join(parts)


class ToolActivities:
    def __init__(self, store: ArtifactStore) -> None:
        self.store = store

    @activity.defn(name=RUN_TOOL)
    async def run_tool(self, inp: ToolInput) -> ToolOutcome:
        try:
            tool = get_tool(inp.call.name)
            arguments = tool.input_model.model_validate_json(inp.call.arguments or "{}")
            content = json.dumps(await tool.call(arguments), sort_keys=True)
            status = "ok"
        except ToolError as exc:
            content, status = json.dumps({"error": str(exc)}), "error"
        except ValidationError as exc:
            content, status = json.dumps({"error": _validation_message(exc)}), "error"
        return ToolOutcome(
            status=status, result_ref=self.store.put_text(content), preview=preview(content)
        )
