"""Evaluators configured by id in config/evals.yml, registered next to the built-in ones.

    evaluators:
      gives_temperature:            # the id `--eval` and agents.yml `eval:` name
        kind: regex                 # contains | regex | json_schema | max_tokens | max_cost
                                    # | llm_judge (rubric: ID or text, model, attempts)
                                    # | pairwise_judge (the same; compares two answers)
        pattern: "-?\\d+°C"         #   ... and that kind's parameters
        description: the answer gives a temperature
        trigger: final              # step (default) | tool | final
        version: "1"
      default:
        kind: composite             # the weighted mean of other evaluators
        of: {gives_temperature: 2, tool_succeeded: 1}

Loading checks everything before registering anything: an unknown kind or parameter, a
composite naming an unknown or pairwise evaluator or itself, an id taken by a built-in one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from p2engine.contract.errors import ConfigError, first_problem, read_config_text
from p2engine.contract.evals import Score, Trigger
from p2engine.evals import judge, rules
from p2engine.evals.registry import (
    EvalFn,
    EvalTarget,
    Evaluator,
    PairEvaluator,
    PairFn,
    get_evaluator,
    load_plugins,
    register,
    registered_evaluators,
    registered_pairwise,
    unregister,
)

COMPOSITE = "composite"


class _Common(BaseModel):
    model_config = ConfigDict(extra="allow")

    kind: str
    version: str = "1"
    description: str = ""
    trigger: Trigger = "step"

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in KINDS:
            raise ValueError(f"unknown kind '{kind}'; kinds: {', '.join(KINDS)}")
        return kind

    def parameters(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Composite(rules.RuleParams):
    of: dict[str, float] = Field(min_length=1, description="evaluator id -> weight")

    @field_validator("of")
    @classmethod
    def _positive(cls, weights: dict[str, float]) -> dict[str, float]:
        if bad := [name for name, weight in weights.items() if not weight > 0]:
            raise ValueError(f"weights must be > 0: {', '.join(bad)}")
        return weights


class _EvalsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    evaluators: dict[str, _Common] = {}


def composite(p: Composite) -> EvalFn:
    async def score(target: EvalTarget) -> Score:
        total = sum(p.of.values())
        parts = {name: (await get_evaluator(name).score(target)).value for name in p.of}
        value = sum(parts[name] * weight for name, weight in p.of.items()) / total
        return Score(
            value=min(1.0, value), rationale="weighted mean of " + ", ".join(p.of), parts=parts
        )

    return score


JUDGE = "llm_judge"
PAIRWISE_JUDGE = "pairwise_judge"
KINDS: dict[str, tuple[type[rules.RuleParams], Callable[[Any], EvalFn | PairFn]]] = {
    **rules.RULE_KINDS,
    COMPOSITE: (Composite, composite),
    JUDGE: (judge.Judge, lambda params: judge.judge(params, params.rubric)),
    PAIRWISE_JUDGE: (judge.Judge, lambda params: judge.pairwise_judge(params, params.rubric)),
}

_loaded: Path | None = None


def load_evaluators(path: Path) -> list[Evaluator | PairEvaluator]:
    """Register the plugins' evaluators and those of `path` (once per file; another file
    replaces the configured ones)."""
    global _loaded
    load_plugins()
    if _loaded == path:
        return [e for e in _registered() if e.source == "config"]
    configured = _parse(path)
    for previous in _registered():
        if previous.source == "config":
            unregister(previous.id)
    for evaluator in configured:
        register(evaluator)
    _loaded = path
    return configured


def _registered() -> list[Evaluator | PairEvaluator]:
    return [*registered_evaluators(), *registered_pairwise()]


def _parse(path: Path) -> list[Evaluator | PairEvaluator]:
    text = read_config_text(path, "evaluators file")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc.__class__.__name__})") from exc
    if problem := _boolean_key(data):
        raise ConfigError(f"{path}: {problem}")
    try:
        parsed = _EvalsFile.model_validate(data or {})
    except ValidationError as exc:
        raise ConfigError(f"{path}: {first_problem(exc)}") from exc
    taken = {e.id for e in _registered() if e.source != "config"}
    pairs = {e.id for e in registered_pairwise() if e.source != "config"}
    configured: list[Evaluator] = []
    configured_pairs: list[PairEvaluator] = []
    composites: dict[str, Composite] = {}
    for evaluator_id, entry in parsed.evaluators.items():
        if evaluator_id in taken:
            raise ConfigError(
                f"{path}: evaluator id '{evaluator_id}' is taken by a built-in or plugin one"
            )
        params_model, build = KINDS[entry.kind]
        try:
            params = params_model.model_validate(entry.parameters())
        except ValidationError as exc:
            raise ConfigError(f"{path}: evaluator '{evaluator_id}': {first_problem(exc)}") from exc
        if isinstance(params, judge.Judge):
            try:
                rubric = judge.rubric_text(params.rubric, path.parent / "rubrics")
            except ConfigError as exc:
                raise ConfigError(f"{path}: evaluator '{evaluator_id}': {exc}") from exc
            params = params.model_copy(update={"rubric": rubric})
        if entry.kind == PAIRWISE_JUDGE:
            pairs.add(evaluator_id)
            description = entry.description or "a pairwise judge"
            fn = cast(PairFn, build(params))
            configured_pairs.append(
                PairEvaluator(evaluator_id, entry.version, description, entry.kind, fn, "config")
            )
            continue
        configured.append(
            Evaluator(
                evaluator_id,
                entry.version,
                entry.description or f"{entry.kind} rule",
                entry.kind,
                entry.trigger,
                cast(EvalFn, build(params)),
                "config",
            )
        )
        if isinstance(params, Composite):
            composites[evaluator_id] = params
    known = taken | set(parsed.evaluators)
    for evaluator_id, params in composites.items():
        if unknown := sorted(set(params.of) - known):
            raise ConfigError(
                f"{path}: composite '{evaluator_id}' names unknown evaluator '{unknown[0]}'; "
                f"known evaluators: {', '.join(sorted(known - {evaluator_id} - pairs))}"
            )
        if pairwise := sorted(set(params.of) & pairs):
            raise ConfigError(
                f"{path}: composite '{evaluator_id}' names pairwise evaluator '{pairwise[0]}', "
                "which compares two answers and cannot score one"
            )
        if cycle := _cycle(evaluator_id, composites, [evaluator_id]):
            raise ConfigError(f"{path}: composites include each other: {' -> '.join(cycle)}")
    quick = {e.id: e.quick for e in registered_evaluators() if e.source != "config"}
    quick |= {e.id: e.kind in rules.RULE_KINDS for e in configured}

    def all_quick(evaluator_id: str) -> bool:
        if params := composites.get(evaluator_id):
            return all(all_quick(part) for part in params.of)
        return quick[evaluator_id]

    return [*(replace(e, quick=all_quick(e.id)) for e in configured), *configured_pairs]


def _boolean_key(data: object, where: str = "") -> str | None:
    """YAML reads an unquoted on, off, yes or no as a boolean: name the key, not a type."""
    if not isinstance(data, dict):
        return None
    for key, value in data.items():
        if isinstance(key, bool):
            return f"'{where}{key}': YAML reads this key as a boolean; quote it"
        if found := _boolean_key(value, f"{where}{key}."):
            return found
    return None


def _cycle(node: str, composites: dict[str, Composite], path: list[str]) -> list[str] | None:
    """A path from `path[0]` back to itself through composite parts, if there is one."""
    for part in composites[node].of if node in composites else {}:
        if part == path[0]:
            return [*path, part]
        if part not in path and (found := _cycle(part, composites, [*path, part])):
            return found
    return None
