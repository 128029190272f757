"""Agent configs (contract/agent_config.py): one value for every knob, its id a hash of
them, and the patches a variant applies."""

from __future__ import annotations

import pytest

from p2engine.contract.agent import AgentSpec
from p2engine.contract.agent_config import AgentConfig, ConfigPatch
from p2engine.contract.rollouts import Arm, RolloutSpec, Team, Variant
from p2engine.workflows.arms import unfinished_record
from p2engine.workflows.expansion import ArmPlan

ALPHA = AgentSpec(
    id="agent_alpha", model="scripted/default", system_prompt="Be brief.", tools=["get_weather"]
)


def test_the_same_knobs_have_the_same_id_and_any_other_knob_another() -> None:
    config = AgentConfig.of(ALPHA)
    assert config.id == AgentConfig.of(ALPHA.model_copy()).id
    assert len(config.id) == 16 and int(config.id, 16) >= 0
    others = [
        ConfigPatch(system_prompt="Be thorough."),
        ConfigPatch(persona="critic"),
        ConfigPatch(tools=()),
        ConfigPatch(model="scripted/careful"),
        ConfigPatch(temperature=0.2),
        ConfigPatch(top_p=0.5),
        ConfigPatch(max_tokens=64),
    ]
    ids = {patch.apply(config).id for patch in others}
    assert len(ids) == len(others) and config.id not in ids
    # The agent is part of what ran: another agent with the same knobs is another config.
    assert AgentConfig.of(ALPHA.model_copy(update={"id": "agent_beta"})).id != config.id


def test_a_config_runs_on_its_agent_and_reads_back_the_same() -> None:
    config = ConfigPatch(system_prompt="Cite the tool you used.", tools=()).apply(
        AgentConfig.of(ALPHA)
    )
    agent = config.on(ALPHA)
    assert (agent.system_prompt, agent.tools, agent.model) == (
        "Cite the tool you used.", [], "scripted/default"
    )  # fmt: skip
    assert AgentConfig.of(agent) == config
    assert agent.limits == ALPHA.limits  # who the agent is does not change


def test_a_patch_keeps_what_it_leaves_unset_and_says_what_it_changes() -> None:
    config = AgentConfig.of(ALPHA)
    assert ConfigPatch().apply(config) == config
    patch = ConfigPatch(model="scripted/default", temperature=0.7)
    assert patch.changes(config) == {"temperature": 0.7}  # the model was that already


def test_a_variant_is_a_patch_and_behavior_template_is_its_persona() -> None:
    variant = Variant(system_prompt="Answer in at most 10 words.", behavior_template="critic")
    assert variant.patch() == ConfigPatch(
        system_prompt="Answer in at most 10 words.", persona="critic"
    )


def plan(*variants: Variant, model: str | None = None) -> ArmPlan:
    team = Team(initial_message="hi", base=Variant(agent_id="agent_alpha"), variants=list(variants))
    return ArmPlan(RolloutSpec(teams={"t": team}), {"agent_alpha": ALPHA}, [], model=model)


def record_config(arm: Arm) -> str:
    return unfinished_record("rollout-x", arm, "cancelled", "stopped").config


def test_a_rollout_variant_sets_the_system_prompt_and_each_arm_names_its_config() -> None:
    arms = plan(Variant(id="plain"), Variant(id="cited", system_prompt="Cite the tool you used."))
    plain, cited = arms.arm(0), arms.arm(1)
    assert plain.agent.system_prompt == "Be brief."
    assert cited.agent.system_prompt == "Cite the tool you used."
    assert record_config(plain) == AgentConfig.of(ALPHA).id
    assert record_config(cited) == AgentConfig.of(cited.agent).id != record_config(plain)


def test_the_rollouts_model_is_part_of_the_config_its_arms_ran() -> None:
    arm = plan(Variant(id="plain"), model="scripted/careful").arm(0)
    assert arm.agent.model == "scripted/careful"
    assert (
        record_config(arm) == ConfigPatch(model="scripted/careful").apply(AgentConfig.of(ALPHA)).id
    )


@pytest.mark.parametrize("blank", ["", "   ", "\n\t"])
def test_a_blank_system_prompt_in_a_variant_is_refused(blank: str) -> None:
    with pytest.raises(ValueError, match="a system_prompt has text"):
        Variant(system_prompt=blank)
