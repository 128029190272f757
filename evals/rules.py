"""Rule-based evaluators: deterministic checks that need no model.

Two kinds of rule: `tool_succeeded` is a ready evaluator; the others take parameters and are
instantiated by id in config/evals.yml (`kind: contains`, `kind: regex`, ...). A rule scores
1 when it holds and 0 when it does not, and says why.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, field_validator

from p2engine.contract.evals import Score
from p2engine.contract.states import State
from p2engine.evals.registry import EvalFn, EvalTarget, evaluator


def verdict(holds: bool, why: str) -> Score:
    return Score(value=1.0 if holds else 0.0, rationale=why)


@evaluator(
    "tool_succeeded",
    version="1",
    description="1 when the tool call returned a result, 0 when it failed or was skipped",
    trigger="tool",
    kind="rule",
    quick=True,
)
def tool_succeeded(target: EvalTarget) -> Score:
    if target.kind not in (State.TOOL_RESULT, State.AGENT_RESULT):
        return verdict(True, "not a tool result")
    status = target.tool_status or "ok"
    return verdict(status == "ok", f"{target.tool_name or 'the tool'} returned {status}")


class RuleParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Contains(RuleParams):
    text: str = Field(min_length=1)
    case_sensitive: bool = False


class Regex(RuleParams):
    pattern: str = Field(min_length=1)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regex {pattern!r}: {exc}") from None
        return pattern


class JsonSchema(RuleParams):
    json_schema: dict[str, Any] = Field(alias="schema")

    @field_validator("json_schema")
    @classmethod
    def _is_a_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"invalid JSON schema: {exc.message}") from None
        return schema


class MaxTokens(RuleParams):
    limit: int = Field(ge=1)


class MaxCost(RuleParams):
    limit_usd: float = Field(gt=0)


def contains(p: Contains) -> EvalFn:
    def score(target: EvalTarget) -> Score:
        found = (
            p.text in target.text
            if p.case_sensitive
            else p.text.casefold() in target.text.casefold()
        )
        return verdict(found, f"{'contains' if found else 'lacks'} {p.text!r}")

    return score


def regex(p: Regex) -> EvalFn:
    compiled = re.compile(p.pattern)

    def score(target: EvalTarget) -> Score:
        match = compiled.search(target.text)
        why = f"matches {match.group(0)!r}" if match else f"no match for /{p.pattern}/"
        return verdict(match is not None, why)

    return score


def json_schema(p: JsonSchema) -> EvalFn:
    check = jsonschema.validators.validator_for(p.json_schema)(p.json_schema)

    def score(target: EvalTarget) -> Score:
        try:
            document = json.loads(target.text)
        except json.JSONDecodeError as exc:
            return verdict(False, f"not JSON: {exc.msg} at character {exc.pos}")
        error = next(iter(check.iter_errors(document)), None)
        if error is None:
            return verdict(True, "matches the schema")
        where = "/".join(str(part) for part in error.absolute_path) or "the document"
        return verdict(False, f"{where}: {error.message}")

    return score


def max_tokens(p: MaxTokens) -> EvalFn:
    def score(target: EvalTarget) -> Score:
        used = target.usage.prompt_tokens + target.usage.completion_tokens
        return verdict(used <= p.limit, f"{used} tokens so far, limit {p.limit}")

    return score


def max_cost(p: MaxCost) -> EvalFn:
    def score(target: EvalTarget) -> Score:
        spent = target.usage.cost_usd
        return verdict(spent <= p.limit_usd, f"${spent:.4f} so far, limit ${p.limit_usd:g}")

    return score


# kind -> (its parameters, what builds the scoring function from them)
RULE_KINDS: dict[str, tuple[type[RuleParams], Callable[[Any], EvalFn]]] = {
    "contains": (Contains, contains),
    "regex": (Regex, regex),
    "json_schema": (JsonSchema, json_schema),
    "max_tokens": (MaxTokens, max_tokens),
    "max_cost": (MaxCost, max_cost),
}
