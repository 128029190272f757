"""A rollout's arms: every variant of every team, on every input, `repeats` times. Pure and
deterministic (the order is the file's), so the workflow that fans them out and the client
that checks a file before starting it expand alike; tested without Temporal."""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from contract.agent import AgentSpec
from contract.errors import ConfigError
from contract.rollouts import Arm, RolloutSpec, Team, Variant


class ExpansionError(ConfigError):
    """A spec that validates but cannot run: `where` is its dotted path in the file."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"'{where}': {problem}")
        self.where = where


def variants(name: str, team: Team) -> list[tuple[str, str, Variant]]:
    """(id, where in the file, settings over the base) of each of a team's variants: the ids
    users gave are kept, the others are v001, v002, ... in order; a grid is expanded in the
    order of its keys."""
    where = f"teams.{name}.variants"
    if isinstance(team.variants, dict):
        keys = list(team.variants)
        combos = itertools.product(*(team.variants[k] for k in keys))
        listed = [
            (f"{where}.{keys[0]}", Variant.model_validate(dict(zip(keys, combo, strict=True))))
            for combo in combos
        ]
    else:
        listed = [(f"{where}.{n}", variant) for n, variant in enumerate(team.variants)]
    found: list[tuple[str, str, Variant]] = []
    taken: set[str] = set()
    for n, (at, variant) in enumerate(listed, start=1):
        variant_id = variant.id or f"v{n:03d}"
        if variant_id in taken:
            raise ExpansionError(at, f"variant id '{variant_id}' is used twice in team {name}")
        taken.add(variant_id)
        found.append((variant_id, at, variant.over(team.base)))
    return found


def arm_count(spec: RolloutSpec, cases: int) -> int:
    return sum(len(variants(n, t)) for n, t in spec.teams.items()) * cases * spec.repeats


def expand(spec: RolloutSpec, agents: Mapping[str, AgentSpec], inputs: list[str]) -> list[Arm]:
    """Every arm, in order; `inputs` replaces each variant's first message when given. A
    rollout over `spec.max_arms`, an unknown agent or a variant with no message is refused."""
    cases = len(inputs) or 1
    total = arm_count(spec, cases)
    if total > spec.max_arms:
        raise ExpansionError(
            "teams", f"{total} arms is more than max_arms ({spec.max_arms}); raise it or split"
        )
    arms: list[Arm] = []
    for name, team in spec.teams.items():
        for variant_id, at, settings in variants(name, team):
            agent = _agent(settings, agents, at)
            first = settings.initial_message or team.initial_message
            messages = inputs or ([first] if first else [])
            if not messages:
                raise ExpansionError(at, "no initial_message (in the variant or the team)")
            for case, message in enumerate(messages):
                for repeat in range(spec.repeats):
                    label = f"r{repeat}" if cases == 1 else f"c{case}-r{repeat}"
                    arms.append(
                        Arm(
                            key=f"{name}/{variant_id}/{label}",
                            team=name,
                            variant=variant_id,
                            case=case,
                            repeat=repeat,
                            agent=agent,
                            message=message,
                        )
                    )
    return arms


def _agent(settings: Variant, agents: Mapping[str, AgentSpec], at: str) -> AgentSpec:
    if settings.agent_id is None:
        raise ExpansionError(at, "no agent_id (in the variant or the team's base)")
    base = agents.get(settings.agent_id)
    if base is None:
        known = ", ".join(sorted(agents)) or "none"
        raise ExpansionError(at, f"unknown agent '{settings.agent_id}'; agents: {known}")
    changes = settings.model_dump(
        include={"model", "temperature", "top_p", "max_tokens", "tools", "persona"},
        exclude_none=True,
    )
    if settings.behavior_template is not None:
        changes["persona"] = settings.behavior_template
    return base.model_copy(update=changes)
