"""What a conversation's payloads carry: a step's extras, the slim catalog and what it reads."""

from __future__ import annotations

from p2engine.contract.agent import AgentEval, AgentSpec, Rule
from p2engine.contract.agent_config import AgentConfig
from p2engine.contract.evals import EvaluatorInfo
from p2engine.contract.models import Catalog, CatalogPartInput, ToolInfo
from p2engine.contract.usage import Usage
from p2engine.workflows.payloads import catalog_part, step_extras

ALPHA = AgentSpec(id="alpha", description="Front desk.", tools=["get_weather"])
CRITIC = AgentSpec(
    id="critic", description="Reviews.", persona="critic", eval=AgentEval(evaluators=["fair"])
)
TEXTS = {"critic": "Be critical, $agent_id.", "expert": "Be expert."}
WHOLE = Catalog(
    agents=[ALPHA, CRITIC],
    tools=[ToolInfo(name="get_weather", side_effect_free=True)],
    personas=sorted(TEXTS),
    persona_texts=TEXTS,
    evaluators=[EvaluatorInfo(id=i, version="1", trigger="step") for i in ("fair", "helpful", "x")],
)
STORED = WHOLE.model_copy(update={"ref": "catalog-ref"})


def test_a_plain_model_step_carries_no_description_rules_or_fallback() -> None:
    assert step_extras(ALPHA, AgentConfig.of(ALPHA, TEXTS)) == {}


def test_a_step_with_a_persona_carries_the_description_its_text_renders() -> None:
    config = AgentConfig.of(CRITIC, TEXTS)
    assert step_extras(CRITIC, config) == {"description": "Reviews."}


def test_a_rule_based_step_carries_its_rules_and_fallback() -> None:
    rules = [Rule(contains="hi", reply="hello")]
    agent = AgentSpec(id="bot", type="rule_based", rules=rules, fallback_reply="no rule")
    extras = step_extras(agent, AgentConfig.of(agent, TEXTS))
    assert extras == {"rules": rules, "fallback_reply": "no rule"}


def test_a_catalog_without_a_ref_is_carried_whole() -> None:
    assert WHOLE.for_agent(ALPHA, []) is WHOLE
    assert catalog_part(WHOLE, agent_id="critic", persona="expert") is None


def test_a_slim_catalog_keeps_names_tools_its_agents_persona_text_and_evaluators() -> None:
    slim = STORED.for_agent(CRITIC, ["fair", "helpful"])
    assert slim.agents == []
    assert slim.agent_names() == ["alpha", "critic"]
    assert slim.persona_texts == {"critic": TEXTS["critic"]}
    assert [e.id for e in slim.evaluators] == ["fair", "helpful"]
    assert (slim.personas, slim.tools, slim.ref) == (WHOLE.personas, WHOLE.tools, "catalog-ref")
    assert STORED.for_agent(ALPHA, []).persona_texts == {}


def test_a_slim_catalog_reads_only_what_it_lacks() -> None:
    slim = STORED.for_agent(CRITIC, [])
    part = catalog_part(slim, agent_id="critic", persona="expert")
    assert part == CatalogPartInput(ref="catalog-ref", agents=["critic"], personas=["expert"])
    assert catalog_part(slim, persona="critic") is None  # its own persona's text is carried
    assert catalog_part(slim, agent_id="nobody", persona="nothing") is None  # unknown names
    assert catalog_part(slim) is None


def test_what_was_read_completes_the_slim_catalog_for_a_child() -> None:
    slim = STORED.for_agent(ALPHA, ["helpful"])
    read = slim.with_part(STORED.part(["critic"], ["expert"]))
    assert read.agent("critic") == CRITIC
    assert read.persona_texts == TEXTS  # the critic agent's persona comes with its spec
    assert [e.id for e in read.evaluators] == ["helpful", "fair"]  # and its evaluators
    assert catalog_part(read, agent_id="critic", persona="expert") is None
    again = read.with_part(STORED.part(["critic"], []))  # read twice, kept once
    assert (again.agents, again.evaluators) == (read.agents, read.evaluators)
    child = read.for_agent(CRITIC, ["fair"])
    assert (child.agents, [e.id for e in child.evaluators]) == ([], ["fair"])


def test_a_usage_keeps_its_latency_to_the_microsecond() -> None:
    total = Usage(latency_ms=554.3469389958773) + Usage(latency_ms=2.7759750009863637)
    assert total.latency_ms == 557.123
    assert Usage(latency_ms=0.0004).latency_ms == 0.0
