"""Evaluators: the registry and its plugins (evals/registry.py), the rule kinds
(evals/rules.py) and evaluators configured by id in a YAML file (evals/config.py)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import p2engine.evals.config as config
import p2engine.evals.registry as registry
from p2engine.contract.errors import ConfigError
from p2engine.contract.evals import Score
from p2engine.contract.states import State
from p2engine.contract.usage import Usage
from p2engine.evals.config import load_evaluators
from p2engine.evals.registry import (
    ENTRY_POINT_GROUP,
    EvalTarget,
    PairTarget,
    UnknownEvaluator,
    evaluator,
    get_evaluator,
    get_pairwise,
    load_plugins,
    pairwise,
)
from p2engine.evals.rules import tool_succeeded
from tests.plugins import install_distribution


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test registers into a copy of the registry, with no config file loaded yet."""
    monkeypatch.setattr(registry, "_EVALUATORS", dict(registry._EVALUATORS))
    monkeypatch.setattr(registry, "_PAIRWISE", dict(registry._PAIRWISE))
    monkeypatch.setattr(config, "_loaded", None)


def answer(text: str, **fields: object) -> EvalTarget:
    return EvalTarget(kind=State.ASSISTANT_MESSAGE, text=text, **fields)  # type: ignore[arg-type]


async def score(evaluator_id: str, target: EvalTarget) -> Score:
    return await get_evaluator(evaluator_id).score(target)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "evals.yml"
    path.write_text(text)
    return path


# --- the registry ------------------------------------------------------------------------


async def test_a_decorated_function_is_registered_with_its_options() -> None:
    @evaluator("unit_polite", version="2", description="says please", trigger="final")
    def polite(target: EvalTarget) -> Score:
        return Score(value=1.0 if "please" in target.text else 0.0)

    registered = get_evaluator("unit_polite")
    assert (registered.version, registered.trigger, registered.kind) == ("2", "final", "polite")
    assert registered.source == "plugin"  # defined outside the evals package
    assert (await registered.score(answer("please"))).value == 1.0
    assert (await registered.score(answer("no"))).value == 0.0


async def test_an_async_evaluator_is_awaited() -> None:
    @evaluator("unit_async", version="1", description="async")
    async def later(target: EvalTarget) -> Score:
        return Score(value=0.25, rationale=target.text)

    assert await score("unit_async", answer("why")) == Score(value=0.25, rationale="why")


def test_an_id_taken_or_malformed_is_refused() -> None:
    original = get_evaluator("tool_succeeded")
    with pytest.raises(ConfigError, match="'tool_succeeded' is registered twice"):
        evaluator("tool_succeeded", version="1", description="impostor")(tool_succeeded)
    assert get_evaluator("tool_succeeded") is original
    for bad in ("", "has space", "a/b", "x" * 65):
        with pytest.raises(ConfigError, match="evaluator id"):
            evaluator(bad, version="1", description="bad")(tool_succeeded)
    with pytest.raises(ConfigError, match="needs a version"):
        evaluator("unit_unversioned", version=" ", description="bad")(tool_succeeded)


def test_an_unknown_id_names_the_known_ones() -> None:
    with pytest.raises(
        UnknownEvaluator, match=r"unknown evaluator 'nope'; known evaluators: .*tool"
    ):
        get_evaluator("nope")


async def test_a_pairwise_evaluator_shares_the_ids_and_is_kept_apart_from_single_ones() -> None:
    @pairwise("unit_longer", version="1", description="the longer answer wins")
    def longer(target: PairTarget) -> Score:
        return Score(value=1.0 if len(target.first) > len(target.second) else 0.0)

    found = get_pairwise("unit_longer")
    assert (found.kind, found.source) == ("longer", "plugin")
    assert (await found.compare(PairTarget("q", "a long one", "short"))).value == 1.0
    with pytest.raises(UnknownEvaluator, match="'unit_longer' compares two answers"):
        get_evaluator("unit_longer")
    with pytest.raises(UnknownEvaluator, match="'tool_succeeded' scores one answer"):
        get_pairwise("tool_succeeded")
    with pytest.raises(UnknownEvaluator, match=r"known pairwise evaluators: .*unit_longer"):
        get_pairwise("nope")
    with pytest.raises(ConfigError, match="'unit_longer' is registered twice"):
        evaluator("unit_longer", version="1", description="impostor")(tool_succeeded)
    with pytest.raises(ConfigError, match="'tool_succeeded' is registered twice"):
        pairwise("tool_succeeded", version="1", description="impostor")(longer)


def test_scores_and_sub_scores_stay_within_0_and_1() -> None:
    for bad in ({"value": 1.5}, {"value": -0.1}, {"value": 0.5, "parts": {"a": 2.0}}):
        with pytest.raises(ValueError):
            Score.model_validate(bad)


# --- plugins -----------------------------------------------------------------------------

PLUGIN_SOURCE = """
from p2engine import Score, evaluator


@evaluator("unit_plugin_eval", version="1", description="from a plugin")
def plugin_eval(target):
    return Score(value=0.5)
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    yield tmp_path
    for module in ("p2e_unit_eval_plugin", "p2e_unit_broken_eval_plugin"):
        sys.modules.pop(module, None)
    importlib.invalidate_caches()


def install(site: Path, module: str, source: str) -> None:
    install_distribution(site, ENTRY_POINT_GROUP, "unit", module, source, dist=module)


async def test_an_entry_point_plugin_registers_its_evaluators(site: Path) -> None:
    install(site, "p2e_unit_eval_plugin", PLUGIN_SOURCE)
    load_plugins()
    assert (await score("unit_plugin_eval", answer("x"))).value == 0.5


def test_a_broken_plugin_is_one_config_error(site: Path) -> None:
    install(site, "p2e_unit_broken_eval_plugin", "raise RuntimeError('boom')\n")
    with pytest.raises(ConfigError, match=r"evaluator plugin 'unit' .* failed to load: boom"):
        load_plugins()


# --- rules -------------------------------------------------------------------------------


async def test_tool_succeeded_scores_tool_results_by_status() -> None:
    def result(status: str) -> EvalTarget:
        return EvalTarget(
            kind=State.TOOL_RESULT, text="{}", tool_name="get_weather", tool_status=status
        )

    assert await score("tool_succeeded", result("ok")) == Score(
        value=1.0, rationale="get_weather returned ok"
    )
    assert (await score("tool_succeeded", result("error"))).value == 0.0
    assert (await score("tool_succeeded", result("skipped"))).value == 0.0


RULES = """
evaluators:
  says_paris: {kind: contains, text: Paris}
  says_paris_exactly: {kind: contains, text: Paris, case_sensitive: true}
  gives_temperature: {kind: regex, pattern: "-?\\\\d+°C"}
  is_a_forecast:
    kind: json_schema
    schema: {type: object, required: [city], properties: {city: {type: string}}}
  few_tokens: {kind: max_tokens, limit: 100}
  cheap: {kind: max_cost, limit_usd: 0.01}
"""


@pytest.mark.parametrize(
    ("evaluator_id", "target", "value", "why"),
    [
        ("says_paris", answer("in paris"), 1.0, "contains 'Paris'"),
        ("says_paris_exactly", answer("in paris"), 0.0, "lacks 'Paris'"),
        ("gives_temperature", answer("It is -3°C."), 1.0, "matches '-3°C'"),
        ("gives_temperature", answer("It is cold."), 0.0, "no match"),
        ("is_a_forecast", answer('{"city": "Oslo"}'), 1.0, "matches the schema"),
        ("is_a_forecast", answer('{"city": 3}'), 0.0, "city: 3 is not of type 'string'"),
        ("is_a_forecast", answer("{"), 0.0, "not JSON"),
        (
            "few_tokens",
            answer("", usage=Usage(prompt_tokens=60, completion_tokens=40)),
            1.0,
            "100 tokens",
        ),
        (
            "few_tokens",
            answer("", usage=Usage(prompt_tokens=60, completion_tokens=41)),
            0.0,
            "101 tokens",
        ),
        ("cheap", answer("", usage=Usage(cost_usd=0.02)), 0.0, "$0.0200 so far"),
    ],
)
async def test_rules_hold_or_not_and_say_why(
    tmp_path: Path, evaluator_id: str, target: EvalTarget, value: float, why: str
) -> None:
    load_evaluators(write(tmp_path, RULES))
    result = await score(evaluator_id, target)
    assert result.value == value
    assert why in result.rationale


# --- configured evaluators ---------------------------------------------------------------


async def test_a_composite_is_the_weighted_mean_of_its_parts(tmp_path: Path) -> None:
    composite = "{kind: composite, of: {says_paris: 3, gives_temperature: 1}, trigger: final}"
    path = write(tmp_path, f"{RULES}  default: {composite}\n")
    loaded = load_evaluators(path)
    assert "default" in {e.id for e in loaded}
    assert get_evaluator("default").trigger == "final"
    result = await score("default", answer("Paris is lovely"))
    assert result.value == 0.75
    assert result.parts == {"says_paris": 1.0, "gives_temperature": 0.0}


def test_rules_and_composites_of_rules_are_quick_and_anything_with_a_judge_is_not(
    tmp_path: Path,
) -> None:
    judged = "{kind: llm_judge, rubric: be brief}"
    path = write(
        tmp_path,
        f"{RULES}  judged: {judged}\n"
        "  of_rules: {kind: composite, of: {says_paris: 1, tool_succeeded: 1}}\n"
        "  nested: {kind: composite, of: {of_rules: 1}}\n"
        "  with_judge: {kind: composite, of: {of_rules: 1, judged: 1}}\n",
    )
    load_evaluators(path)
    quick = {e: get_evaluator(e).quick for e in ("says_paris", "of_rules", "nested", "judged")}
    assert quick == {"says_paris": True, "of_rules": True, "nested": True, "judged": False}
    assert get_evaluator("with_judge").quick is False
    assert get_evaluator("tool_succeeded").quick is True


def test_a_plugin_evaluator_is_quick_only_when_it_says_so() -> None:
    @evaluator("unit_slow", version="1", description="may call out")
    def slow(target: EvalTarget) -> Score:
        return Score(value=1.0)

    @evaluator("unit_quick", version="1", description="pure", quick=True)
    def pure(target: EvalTarget) -> Score:
        return Score(value=1.0)

    assert (get_evaluator("unit_slow").quick, get_evaluator("unit_quick").quick) == (False, True)


def test_loading_a_file_again_keeps_one_registration_and_another_file_replaces_it(
    tmp_path: Path,
) -> None:
    first = write(tmp_path, RULES)
    load_evaluators(first)
    load_evaluators(first)
    other = tmp_path / "other.yml"
    other.write_text("evaluators:\n  says_oslo: {kind: contains, text: Oslo}\n")
    load_evaluators(other)
    get_evaluator("says_oslo")
    with pytest.raises(UnknownEvaluator):
        get_evaluator("says_paris")
    get_evaluator("tool_succeeded")  # built-in ones stay


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "evaluators:\n  x: {kind: vibes}\n",
            "'evaluators.x.kind': unknown kind 'vibes'; kinds: contains",
        ),
        ("evaluators:\n  x: {kind: contains}\n", "evaluator 'x': 'text': Field required"),
        (
            "evaluators:\n  x: {kind: contains, text: a, colour: red}\n",
            "evaluator 'x': 'colour': Extra inputs",
        ),
        ("evaluators:\n  x: {kind: regex, pattern: '('}\n", "invalid regex '('"),
        ("evaluators:\n  x: {kind: json_schema, schema: {type: 7}}\n", "invalid JSON schema"),
        (
            "evaluators:\n  x: {kind: max_tokens, limit: 0}\n",
            "'limit': Input should be greater than or equal to 1",
        ),
        (
            "evaluators:\n  x: {kind: contains, text: a, trigger: always}\n",
            "'evaluators.x.trigger'",
        ),
        (
            "evaluators:\n  x: {kind: contains, text: a, on: final}\n",
            "'evaluators.x.True': YAML reads this key as a boolean",
        ),
        (
            "evaluators:\n  x: {kind: composite, of: {nope: 1}}\n",
            "composite 'x' names unknown evaluator 'nope'",
        ),
        (
            "evaluators:\n  x: {kind: composite, of: {x: 1}}\n",
            "composites include each other: x -> x",
        ),
        (
            "evaluators:\n  a: {kind: composite, of: {b: 1}}\n  b: {kind: composite, of: {a: 1}}\n",
            "composites include each other: a -> b -> a",
        ),
        ("evaluators:\n  x: {kind: composite, of: {tool_succeeded: 0}}\n", "weights must be > 0"),
        ("evaluators:\n  tool_succeeded: {kind: contains, text: a}\n", "'tool_succeeded' is taken"),
        ("evaluators: [1, 2]\n", "'evaluators': Input should be a valid dictionary"),
        (
            "evaluators:\n  x: {kind: llm_judge, rubric: missing}\n",
            "evaluator 'x': rubric not found",
        ),
        ("evaluators:\n  x: {kind: llm_judge, rubric: r r, attempts: 9}\n", "'attempts'"),
        ("evaluators: {x: [\n", "not valid YAML"),
        (
            "evaluators:\n  p: {kind: pairwise_judge, rubric: r r}\n"
            "  x: {kind: composite, of: {p: 1}}\n",
            "composite 'x' names pairwise evaluator 'p'",
        ),
        ("evaluators:\n  p: {kind: pairwise_judge, rubric: missing}\n", "rubric not found"),
    ],
)
def test_a_bad_file_is_one_config_error_and_registers_nothing(
    tmp_path: Path, text: str, problem: str
) -> None:
    before = {e.id for e in registry.registered_evaluators()}
    with pytest.raises(ConfigError) as error:
        load_evaluators(write(tmp_path, text))
    assert problem in str(error.value)
    assert str(tmp_path / "evals.yml") in str(error.value)
    assert {e.id for e in registry.registered_evaluators()} == before


def test_a_missing_file_is_one_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="evaluators file not found"):
        load_evaluators(tmp_path / "missing.yml")


def test_the_shipped_file_loads() -> None:
    project = Path(__file__).resolve().parents[2]
    ids = {e.id for e in load_evaluators(project / "config" / "evals.yml")}
    assert {"default", "better_answer"} <= ids
    assert get_pairwise("better_answer").kind == "pairwise_judge"


def test_a_configured_pairwise_judge_is_replaced_with_its_file(tmp_path: Path) -> None:
    load_evaluators(write(tmp_path, "evaluators:\n  versus: {kind: pairwise_judge, rubric: r r}\n"))
    assert get_pairwise("versus").source == "config"
    other = tmp_path / "other.yml"
    other.write_text("evaluators:\n  says_oslo: {kind: contains, text: Oslo}\n")
    load_evaluators(other)
    with pytest.raises(UnknownEvaluator):
        get_pairwise("versus")


async def test_a_judge_reads_its_rubric_next_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "rubrics").mkdir()
    (tmp_path / "rubrics" / "terse.md").write_text("Short answers win.")
    load_evaluators(write(tmp_path, "evaluators:\n  terse: {kind: llm_judge, rubric: terse}\n"))
    seen: list[str] = []

    async def model(name: str, messages: list[dict[str, str]]) -> str:
        seen.append(messages[0]["content"])
        return '{"score": 1}'

    assert (await score("terse", answer("ok", complete=model))).value == 1.0
    assert "Short answers win." in seen[0]
    assert get_evaluator("terse").kind == "llm_judge"
