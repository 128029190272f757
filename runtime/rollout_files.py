"""Reading a rollout file: everything wrong with it is found before anything starts, and
named by file, line and field.

Validation runs in layers: the text (tabs, YAML), the shape (pydantic, RolloutSpec), then
what the shape names against the team this machine has (agents, tools, personas,
evaluators), and last the expansion into arms (its cap, each variant's agent and message).
Keys only the original P2Engine knew are taken out first, each with a warning.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from p2engine.contract.errors import ConfigError
from p2engine.contract.models import Catalog
from p2engine.contract.rollouts import ORIGINAL_ONLY, Arm, RolloutSpec, Team, Variant
from p2engine.runtime.yaml_files import Located, Path_, read_located, validated
from p2engine.workflows.expansion import ArmPlan, ExpansionError, checked_arm_count, variants

# The most arms a file may ask for, whatever its max_arms: the workflow keeps a tally per
# variant and the client checks each variant, so the count is checked before either.
ARMS_CEILING = 1_000_000


@dataclass(frozen=True)
class RolloutFile:
    path: Path
    spec: RolloutSpec
    inputs: list[str]  # the cases every variant runs on; empty: each variant's own message
    plan: ArmPlan  # every arm, made from its index on demand
    warnings: list[str]

    @property
    def arms(self) -> list[Arm]:
        """Every arm, made now: for a small rollout or a test; the plan makes one at a time."""
        return [self.plan.arm(index) for index in range(self.plan.total)]


def load_rollout(path: Path, catalog: Catalog, *, repeats: int | None = None) -> RolloutFile:
    """The rollout in `path`, checked against `catalog`, or one located ConfigError;
    `repeats` replaces the file's (`p2e rollout start --repeats`)."""
    data, located = read_located(path, "rollout file")
    warnings = _take_original_only(data, located)
    spec = validated(RolloutSpec, data, located)
    if repeats is not None:
        if repeats < 1:
            raise ConfigError(f"--repeats must be at least 1, not {repeats}")
        spec = spec.model_copy(update={"repeats": repeats})
    inputs = _inputs(spec, path, located)
    # Counted before a variant is made: a grid or repeats too big are refused by arithmetic.
    try:
        total = checked_arm_count(spec, len(inputs) or 1)
    except ExpansionError as exc:
        raise located.error(tuple(exc.where.split(".")), str(exc).partition(": ")[2]) from None
    if total > ARMS_CEILING:
        raise located.error(
            ("repeats",), f"{total} arms is more than p2e runs in one rollout ({ARMS_CEILING})"
        )
    _check_names(spec, catalog, located)
    agents = {agent.id: agent for agent in catalog.agents}
    try:
        plan = ArmPlan(spec, agents, inputs, personas=catalog.persona_texts)
    except ExpansionError as exc:
        raise located.error(tuple(exc.where.split(".")), str(exc).partition(": ")[2]) from None
    _check_baseline(spec, located)
    return RolloutFile(path, spec, inputs, plan, warnings)


def _take_original_only(data: Any, located: Located) -> list[str]:
    """Take out, with a warning each, the keys only the original knew, wherever they sit."""
    warnings: list[str] = []

    def walk(value: Any, at: Path_) -> None:
        if isinstance(value, dict):
            for key in list(value):
                if key in ORIGINAL_ONLY:
                    line = located.line((*at, key))
                    warnings.append(
                        f"{located.path}:{line}: '{key}' is ignored here: {ORIGINAL_ONLY[key]}"
                    )
                    del value[key]
                else:
                    walk(value[key], (*at, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, (*at, index))

    walk(data, ())
    return warnings


def _inputs(spec: RolloutSpec, path: Path, located: Located) -> list[str]:
    if spec.inputs is None:
        return []
    if isinstance(spec.inputs, list):
        if not spec.inputs or not all(m.strip() for m in spec.inputs):
            raise located.error(("inputs",), "the messages must not be empty")
        return spec.inputs
    dataset = path.parent / spec.inputs
    if not dataset.is_file():
        raise located.error(("inputs",), f"no dataset {dataset}")
    return read_cases(dataset)


def read_cases(dataset: Path) -> list[str]:
    """The messages of a JSONL dataset, one {"message": ...} per line; blank lines skipped."""
    messages = []
    for number, line in enumerate(dataset.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise ConfigError(f"{dataset}:{number}: not a JSON line") from None
        message = record.get("message") if isinstance(record, dict) else None
        if not isinstance(message, str) or not message.strip():
            raise ConfigError(f'{dataset}:{number}: needs a "message" of text')
        messages.append(message)
    if not messages:
        raise ConfigError(f"{dataset}: no cases in it")
    return messages


def _check_names(spec: RolloutSpec, catalog: Catalog, located: Located) -> None:
    """The tools, personas and evaluators each team names exist on this machine."""
    tools = {t.name for t in catalog.tools}
    personas = set(catalog.personas)
    evaluators = {e.id for e in catalog.evaluators}
    for name, team in spec.teams.items():
        for _, where, settings in _variants(name, team, located):
            at = tuple(where.split("."))
            if unknown := [t for t in settings.tools or [] if t not in tools]:
                raise located.error(
                    at, f"unknown tool '{unknown[0]}'; tools: {', '.join(sorted(tools))}"
                )
            persona = settings.persona or settings.behavior_template
            if persona is not None and persona not in personas and persona != "none":
                known = ", ".join(sorted(personas)) or "none"
                raise located.error(at, f"unknown persona '{persona}'; personas: {known}")
        evaluator = team.eval.evaluator_id if team.eval else None
        if evaluator is not None and evaluator not in evaluators:
            raise located.error(
                ("teams", name, "eval", "evaluator_id"),
                f"unknown evaluator '{evaluator}'; evaluators: {', '.join(sorted(evaluators))}",
            )


def _variants(name: str, team: Team, located: Located) -> list[tuple[str, str, Variant]]:
    try:
        return variants(name, team)
    except ExpansionError as exc:
        raise located.error(tuple(exc.where.split(".")), str(exc).partition(": ")[2]) from None


def _check_baseline(spec: RolloutSpec, located: Located) -> None:
    """A baseline names one variant: `team/variant`, or a variant id only one team has."""
    if spec.baseline is None:
        return
    known = [f"{n}/{v}" for n, t in spec.teams.items() for v, _, _ in variants(n, t)]
    matches = [k for k in known if spec.baseline in (k, k.partition("/")[2])]
    if len(matches) != 1:
        problem = "names no variant" if not matches else "is in several teams; name team/variant"
        raise located.error(
            ("baseline",), f"'{spec.baseline}' {problem}; variants: {', '.join(known)}"
        )
