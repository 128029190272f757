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

import yaml
from pydantic import ValidationError

from p2engine.contract.errors import ConfigError, read_config_text
from p2engine.contract.models import Catalog
from p2engine.contract.rollouts import ORIGINAL_ONLY, Arm, RolloutSpec, Team, Variant
from p2engine.workflows.expansion import ArmPlan, ExpansionError, checked_arm_count, variants

Path_ = tuple[str | int, ...]


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
    text = read_config_text(path, "rollout file")
    for number, line in enumerate(text.splitlines(), start=1):
        if "\t" in line[: len(line) - len(line.lstrip())]:
            raise ConfigError(
                f"{path}:{number}: a tab in the indentation; YAML indents with spaces"
            )
    try:
        lines = _lines(yaml.compose(text))
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or exc.__class__.__name__
        raise ConfigError(f"{path}{where}: not valid YAML ({problem})") from None
    located = _Locator(path, lines)
    warnings = _take_original_only(data, located)
    try:
        spec = RolloutSpec.model_validate(data if data is not None else {})
    except ValidationError as exc:
        # A misspelt key is the likelier mistake than the missing one it was meant to be.
        errors = exc.errors()
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        message = first["msg"].removeprefix("Value error, ")
        # A union's errors name the member they come from ("list[...]"): not a key.
        field = tuple(p for p in first["loc"] if not (isinstance(p, str) and "[" in p))
        raise located.error(field, message) from None
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
        plan = ArmPlan(spec, agents, inputs)
    except ExpansionError as exc:
        raise located.error(tuple(exc.where.split(".")), str(exc).partition(": ")[2]) from None
    _check_baseline(spec, located)
    return RolloutFile(path, spec, inputs, plan, warnings)


class _Locator:
    """Names a place in the file by its line: the deepest part of the path it has."""

    def __init__(self, path: Path, lines: dict[Path_, int]) -> None:
        self.path = path
        self.lines = lines

    def line(self, where: Path_) -> int:
        parts = tuple(int(p) if isinstance(p, str) and p.isdigit() else p for p in where)
        for end in range(len(parts), -1, -1):
            if (line := self.lines.get(parts[:end])) is not None:
                return line
        return 1

    def error(self, where: Path_, problem: str) -> ConfigError:
        dotted = ".".join(str(p) for p in where)
        return ConfigError(f"{self.path}:{self.line(where)}: '{dotted}': {problem}")


def _lines(node: yaml.Node | None, at: Path_ = ()) -> dict[Path_, int]:
    """The line (1-based) where each key or item of the document starts."""
    if node is None:
        return {}
    found = {at: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            found[(*at, key.value)] = key.start_mark.line + 1
            found |= {
                k: v for k, v in _lines(value, (*at, key.value)).items() if k != (*at, key.value)
            }
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found |= _lines(item, (*at, index))
    return found


def _take_original_only(data: Any, located: _Locator) -> list[str]:
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


def _inputs(spec: RolloutSpec, path: Path, located: _Locator) -> list[str]:
    if spec.inputs is None:
        return []
    if isinstance(spec.inputs, list):
        if not spec.inputs or not all(m.strip() for m in spec.inputs):
            raise located.error(("inputs",), "the messages must not be empty")
        return spec.inputs
    dataset = path.parent / spec.inputs
    if not dataset.is_file():
        raise located.error(("inputs",), f"no dataset {dataset}")
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


def _check_names(spec: RolloutSpec, catalog: Catalog, located: _Locator) -> None:
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


def _variants(name: str, team: Team, located: _Locator) -> list[tuple[str, str, Variant]]:
    try:
        return variants(name, team)
    except ExpansionError as exc:
        raise located.error(tuple(exc.where.split(".")), str(exc).partition(": ")[2]) from None


def _check_baseline(spec: RolloutSpec, located: _Locator) -> None:
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
