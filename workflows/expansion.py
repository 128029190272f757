"""A rollout's arms: every variant of every team, on every input, `repeats` times. Pure and
deterministic, so the workflow that fans them out and the client that checks a file before
starting it expand alike; tested without Temporal."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from p2engine.contract.agent import AgentSpec
from p2engine.contract.agent_config import NO_TEXTS, AgentConfig, ConfigPatch
from p2engine.contract.errors import ConfigError
from p2engine.contract.rollouts import Arm, RolloutSpec, Team, Variant

# The longest value a grid variant's name spells out; longer ones are named by position.
NAMED_VALUE_MAX = 32


class ExpansionError(ConfigError):
    """A spec that validates but cannot run: `where` is its dotted path in the file."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"'{where}': {problem}")
        self.where = where


def variants(name: str, team: Team, *, grid_named: bool = True) -> list[tuple[str, str, Variant]]:
    """(id, where in the file, settings over the base) of each of a team's variants: the ids
    users gave are kept; a grid's variants are named by what varies (grid_name), and the
    others are v001, v002, ... in order. A grid is expanded in the order of its keys.
    `grid_named=False` numbers grid variants too, as rollouts started before
    GRID_VARIANTS_NAMED (workflows/revisions.py) did."""
    where = f"teams.{name}.variants"
    listed: list[tuple[str, Variant, str | None]] = []
    if isinstance(team.variants, dict):
        grid = team.variants
        for combo in itertools.product(*(range(len(values)) for values in grid.values())):
            picks = dict(zip(grid, combo, strict=True))
            settings = {key: grid[key][n] for key, n in picks.items()}
            named = grid_name(grid, picks) if grid_named else None
            listed.append((f"{where}.{next(iter(grid))}", Variant.model_validate(settings), named))
    else:
        listed = [(f"{where}.{n}", variant, None) for n, variant in enumerate(team.variants)]
    found: list[tuple[str, str, Variant]] = []
    taken: set[str] = set()
    for n, (at, variant, named) in enumerate(listed, start=1):
        variant_id = variant.id or named or f"v{n:03d}"
        if variant_id in taken:
            raise ExpansionError(at, f"variant id '{variant_id}' is used twice in team {name}")
        taken.add(variant_id)
        found.append((variant_id, at, variant.over(team.base)))
    return found


def grid_name(grid: Mapping[str, Sequence[object]], picks: Mapping[str, int]) -> str:
    """A grid variant's id, from the position it picks in each key's list: `key=value` for
    each key with more than one value (every key when none has), joined by commas, e.g.
    `model=openai:gpt-4o-mini,temperature=0.2`. A variant id never holds a '/', which
    separates team, variant and arm in arm keys and workflow ids, so a model's provider is
    joined by ':' as pydantic-ai spells it; a list's items are joined by '+', and an empty
    list or a null is `none`. A value too long for a name, or holding ',' or '=', is named
    by its place in the list instead (`initial_message#2`)."""
    varying = [key for key, values in grid.items() if len(values) > 1] or list(grid)
    return ",".join(_named(key, grid[key][picks[key]], picks[key]) for key in varying)


def _named(key: str, value: object, position: int) -> str:
    shown = _shown(value)
    if len(shown) > NAMED_VALUE_MAX or "," in shown or "=" in shown:
        return f"{key}#{position + 1}"
    return f"{key}={shown}"


def _shown(value: object) -> str:
    if isinstance(value, list):
        return "+".join(_shown(item) for item in value) or "none"
    return "none" if value is None else str(value).replace("/", ":")


def variant_count(team: Team) -> int:
    """How many variants a team has, by arithmetic: a grid's is the product of its lists'
    lengths, never expanded to be counted."""
    if isinstance(team.variants, dict):
        return math.prod(len(values) for values in team.variants.values())
    return len(team.variants)


def arm_count(spec: RolloutSpec, cases: int) -> int:
    return sum(variant_count(t) for t in spec.teams.values()) * cases * spec.repeats


def checked_arm_count(spec: RolloutSpec, cases: int) -> int:
    """The rollout's arms, counted before any is made; more than its max_arms is refused."""
    total = arm_count(spec, cases)
    if total > spec.max_arms:
        raise ExpansionError(
            "teams", f"{total} arms is more than max_arms ({spec.max_arms}); raise it or split"
        )
    return total


@dataclass(frozen=True)
class PlannedVariant:
    team: str
    variant: str
    agent: AgentSpec
    config: str  # the id of the config its arms run
    messages: list[str]  # one per case


class ArmPlan:
    """The arms of a rollout, made one at a time from their index, so a rollout of 10,000
    arms never holds them all. Arms go round the variants: every variant runs case 0 of
    repeat 0 before any runs its next, so a rollout stopped early (cancelled, out of
    budget) has compared its variants on the same cases, and drift over time (a provider's
    load, a cache warming) falls on all of them alike."""

    def __init__(
        self,
        spec: RolloutSpec,
        agents: Mapping[str, AgentSpec],
        inputs: Sequence[str],
        *,
        grid_named: bool = True,
        model: str | None = None,
        personas: Mapping[str, str] = NO_TEXTS,
    ) -> None:
        self.cases = len(inputs) or 1
        self.repeats = spec.repeats
        total = checked_arm_count(spec, self.cases)
        self.variants: list[PlannedVariant] = []
        for name, team in spec.teams.items():
            for variant_id, at, settings in variants(name, team, grid_named=grid_named):
                first = settings.initial_message or team.initial_message
                messages = list(inputs) or ([first] if first else [])
                if not messages:
                    raise ExpansionError(at, "no initial_message (in the variant or the team)")
                config = _config(settings, agents, at, model, personas)
                agent = config.on(agents[config.agent_id])
                planned = PlannedVariant(name, variant_id, agent, config.id, messages)
                self.variants.append(planned)
        self.total = total

    def arm(self, index: int) -> Arm:
        """The arm at `index` (0 <= index < total)."""
        order = index % len(self.variants)
        planned = self.variants[order]
        repeat, case = divmod(index // len(self.variants), self.cases)
        label = f"r{repeat}" if self.cases == 1 else f"c{case}-r{repeat}"
        return Arm(
            key=f"{planned.team}/{planned.variant}/{label}",
            team=planned.team,
            variant=planned.variant,
            order=order,
            case=case,
            repeat=repeat,
            agent=planned.agent,
            config=planned.config,
            message=planned.messages[case],
        )


def _config(
    settings: Variant,
    agents: Mapping[str, AgentSpec],
    at: str,
    model: str | None,
    personas: Mapping[str, str],
) -> AgentConfig:
    """The variant's config: its agent's patched by the variant, then by the rollout's model;
    a persona takes its text from `personas` (the catalog's)."""
    if settings.agent_id is None:
        raise ExpansionError(at, "no agent_id (in the variant or the team's base)")
    base = agents.get(settings.agent_id)
    if base is None:
        known = ", ".join(sorted(agents)) or "none"
        raise ExpansionError(at, f"unknown agent '{settings.agent_id}'; agents: {known}")
    config = settings.patch().apply(AgentConfig.of(base, personas), personas)
    return ConfigPatch(model=model).apply(config)
