"""The scripted model as a litellm custom provider, so it runs through `litellm.acompletion`
exactly like a hosted model (usage, cost and errors included). `scripted/proposer` is the
scripted proposer (scripted_proposer.py); every other name is the scripted model.

Imported by activities only (the `activities` package sets LITELLM_LOCAL_MODEL_COST_MAP)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import litellm
from litellm.llms.custom_llm import CustomLLM, CustomLLMError
from litellm.utils import custom_llm_setup

from p2engine.agents.config import ScriptedModelSettings
from p2engine.agents.scripted import PROVIDER, ScriptedFailure, estimate_tokens, respond
from p2engine.agents.scripted_proposer import PROPOSER, proposer_reply
from p2engine.agents.turn import openai_tool_call


class ScriptedLLM(CustomLLM):
    def __init__(self, settings: ScriptedModelSettings) -> None:
        super().__init__()
        self.settings = settings
        self._priced: set[str] = set()

    def _priced_by_litellm(self, model: str) -> None:
        """Put `model`'s price in litellm's cost map, at its first call: litellm's own checks
        of a call's pricing then find the entry at once, where an unknown model would cost
        them a search of the whole map on every call."""
        if model in self._priced:
            return
        price = self.settings.cost_per_1k_tokens / 1000
        litellm.register_model(
            {
                f"{PROVIDER}/{model}": {
                    "input_cost_per_token": price,
                    "output_cost_per_token": price,
                    # No prompt cache: named so litellm does not warn that they default to 0.
                    "cache_creation_input_token_cost": price,
                    "cache_read_input_token_cost": price,
                    "litellm_provider": PROVIDER,
                    "mode": "chat",
                }
            }
        )
        self._priced.add(model)

    def _reply(self, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> Any:
        self._priced_by_litellm(model)
        tools = {
            t["function"]["name"]: t["function"]
            for t in params.get("tools") or []
            if "function" in t
        }
        try:
            reply = proposer_reply(messages) if model == PROPOSER else respond(messages, tools)
        except ScriptedFailure as exc:
            error = CustomLLMError(status_code=exc.status_code, message=str(exc))  # type: ignore[no-untyped-call]
            raise error from exc
        prompt_text = " ".join(str(m.get("content") or "") for m in messages)
        completion_text = (reply.text or "") + "".join(c.arguments for c in reply.tool_calls)
        s = self.settings
        usage = {
            "prompt_tokens": s.prompt_tokens
            if s.prompt_tokens is not None
            else estimate_tokens(prompt_text),
            "completion_tokens": s.completion_tokens
            if s.completion_tokens is not None
            else estimate_tokens(completion_text),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        message: dict[str, Any] = {"role": "assistant", "content": reply.text}
        if reply.tool_calls:
            message["tool_calls"] = [openai_tool_call(c) for c in reply.tool_calls]
        response = litellm.ModelResponse(
            model=f"{PROVIDER}/{model}",
            created=int(time.time()),
            choices=[
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if reply.tool_calls else "stop",
                }
            ],
            usage=usage,
        )
        # The price is known here; litellm takes a cost its provider reports over computing
        # one from its cost map, which would cost it about a quarter of its work on the call.
        cost = usage["total_tokens"] * s.cost_per_1k_tokens / 1000
        response._hidden_params["response_cost"] = cost
        return response

    def completion(self, model: str, messages: list[Any], *args: Any, **kwargs: Any) -> Any:
        if self.settings.latency_ms:
            time.sleep(self.settings.latency_ms / 1000)
        return self._reply(model, messages, kwargs.get("optional_params") or {})

    async def acompletion(self, model: str, messages: list[Any], *args: Any, **kwargs: Any) -> Any:
        if self.settings.latency_ms:
            await asyncio.sleep(self.settings.latency_ms / 1000)
        return self._reply(model, messages, kwargs.get("optional_params") or {})


def register(settings: ScriptedModelSettings) -> None:
    """Make `scripted/<anything>` a litellm model; registering again updates the settings."""
    handler = ScriptedLLM(settings)
    litellm.custom_provider_map = [
        entry for entry in litellm.custom_provider_map if entry["provider"] != PROVIDER
    ] + [{"provider": PROVIDER, "custom_handler": handler}]
    custom_llm_setup()  # type: ignore[no-untyped-call]
