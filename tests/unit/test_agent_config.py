"""Agent configs (contract/agent_config.py): one value for every knob, its id a hash of
them, and the patches a variant applies."""

from __future__ import annotations

import pytest

from p2engine.contract.agent import AgentSpec
from p2engine.contract.agent_config import AgentConfig, ConfigPatch
from p2engine.contract.hashing import content_ref
from p2engine.contract.models import Catalog, ConversationInput, Overrides
from p2engine.contract.rollouts import Arm, RolloutSpec, Team, Variant
from p2engine.workflows.arms import unfinished_record
from p2engine.workflows.expansion import ArmPlan

ALPHA = AgentSpec(
    id="agent_alpha", model="scripted/default", system_prompt="Be brief.", tools=["get_weather"]
)


def test_the_same_knobs_have_the_same_id_and_any_other_knob_another() -> None:
    config = AgentConfig.of(ALPHA, {})
    assert config.id == AgentConfig.of(ALPHA.model_copy(), {}).id
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
    assert AgentConfig.of(ALPHA.model_copy(update={"id": "agent_beta"}), {}).id != config.id


HELPER = ALPHA.model_copy(update={"id": "agent_helper", "persona": "critic"})
TEXTS = {"critic": "You are $agent_id; find the flaw.", "weather_expert": "$agent_id knows."}


def test_a_config_carries_its_personas_text_and_another_text_is_another_config() -> None:
    config = AgentConfig.of(HELPER, TEXTS)
    assert (config.persona, config.persona_text) == ("critic", TEXTS["critic"])
    edited = AgentConfig.of(HELPER, {**TEXTS, "critic": "You are $agent_id; be kind."})
    assert edited.persona == config.persona and edited.id != config.id


def test_a_config_without_persona_text_keeps_the_id_it_had_before_persona_texts() -> None:
    assert AgentConfig.of(ALPHA, {}).id == "e54e8d8df81007cb"
    assert "persona_text" not in AgentConfig.of(ALPHA, {}).canonical()


def test_the_id_is_the_start_of_the_stores_ref_of_the_canonical_json() -> None:
    config = AgentConfig.of(HELPER, TEXTS)
    assert config.ref == content_ref(config.canonical().encode())
    assert len(config.ref) == 64 and config.ref.startswith(config.id)
    assert AgentConfig.model_validate_json(config.canonical()) == config


def test_a_patch_that_sets_a_persona_sets_its_text_and_none_removes_both() -> None:
    config = AgentConfig.of(ALPHA, TEXTS)
    expert = ConfigPatch(persona="weather_expert").apply(config, TEXTS)
    assert (expert.persona, expert.persona_text) == ("weather_expert", TEXTS["weather_expert"])
    removed = ConfigPatch(persona="none").apply(AgentConfig.of(HELPER, TEXTS), TEXTS)
    assert (removed.persona, removed.persona_text) == (None, None)
    assert removed == AgentConfig.of(HELPER.model_copy(update={"persona": None}), TEXTS)
    # A patch that leaves the persona keeps its text.
    assert ConfigPatch(temperature=0.2).apply(expert).persona_text == TEXTS["weather_expert"]


def test_a_conversation_names_the_config_its_steps_run_overrides_included() -> None:
    inp = ConversationInput(
        agent=HELPER.model_copy(update={"model": None}),
        catalog=Catalog(personas=sorted(TEXTS), persona_texts=TEXTS),
        message="hi",
    )
    start = inp.config()
    assert (start.model, start.persona_text) == ("scripted/default", TEXTS["critic"])
    overridden = inp.config(Overrides(persona="weather_expert", tools=[], model="scripted/other"))
    assert (overridden.persona, overridden.persona_text) == (
        "weather_expert",
        TEXTS["weather_expert"],
    )
    assert (overridden.tools, overridden.model) == ((), "scripted/other")
    assert inp.config(Overrides(persona="none")).persona is None


def test_a_config_runs_on_its_agent_and_reads_back_the_same() -> None:
    config = ConfigPatch(system_prompt="Cite the tool you used.", tools=()).apply(
        AgentConfig.of(ALPHA, {})
    )
    agent = config.on(ALPHA)
    assert (agent.system_prompt, agent.tools, agent.model) == (
        "Cite the tool you used.", [], "scripted/default"
    )  # fmt: skip
    assert AgentConfig.of(agent, {}) == config
    assert agent.limits == ALPHA.limits  # who the agent is does not change


def test_a_patch_keeps_what_it_leaves_unset_and_says_what_it_changes() -> None:
    config = AgentConfig.of(ALPHA, {})
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
    assert record_config(plain) == AgentConfig.of(ALPHA, {}).id
    assert record_config(cited) == AgentConfig.of(cited.agent, {}).id != record_config(plain)


def test_an_arm_whose_variant_sets_a_persona_names_the_config_with_its_text() -> None:
    team = Team(
        initial_message="hi",
        base=Variant(agent_id="agent_helper"),
        variants=[Variant(id="kind", persona="weather_expert"), Variant(id="bare", persona="none")],
    )
    plan = ArmPlan(RolloutSpec(teams={"t": team}), {"agent_helper": HELPER}, [], personas=TEXTS)
    kind, bare = plan.arm(0), plan.arm(1)
    assert kind.agent.persona == "weather_expert" and bare.agent.persona is None
    assert (
        record_config(kind)
        == ConfigPatch(persona="weather_expert").apply(AgentConfig.of(HELPER, TEXTS), TEXTS).id
        == AgentConfig.of(kind.agent, TEXTS).id
    )
    assert record_config(bare) == AgentConfig.of(bare.agent, TEXTS).id


def test_the_rollouts_model_is_part_of_the_config_its_arms_ran() -> None:
    arm = plan(Variant(id="plain"), model="scripted/careful").arm(0)
    assert arm.agent.model == "scripted/careful"
    assert (
        record_config(arm)
        == ConfigPatch(model="scripted/careful").apply(AgentConfig.of(ALPHA, {})).id
    )


@pytest.mark.parametrize("blank", ["", "   ", "\n\t"])
def test_a_blank_system_prompt_in_a_variant_is_refused(blank: str) -> None:
    with pytest.raises(ValueError, match="a system_prompt has text"):
        Variant(system_prompt=blank)
