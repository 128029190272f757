"""Rollout files (contract/rollouts.py, workflows/expansion.py, runtime/rollout_files.py):
the original's shape runs, every arm is expanded in order, and whatever is wrong is named
by file, line and field before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from p2engine.contract.agent import AgentSpec
from p2engine.contract.errors import ConfigError
from p2engine.contract.evals import EvaluatorInfo
from p2engine.contract.models import Catalog, ToolInfo
from p2engine.runtime.rollout_files import load_rollout

CATALOG = Catalog(
    agents=[AgentSpec(id="agent_alpha", tools=["get_weather"]), AgentSpec(id="agent_beta")],
    tools=[ToolInfo(name="get_weather"), ToolInfo(name="delegate")],
    personas=["critic", "friendly"],
    evaluators=[EvaluatorInfo(id="helpful", version="1", trigger="step")],
)

ORIGINAL = """\
teams:
  joke_team:
    initial_message: Tell me a joke about space.
    base:
      agent_id: agent_alpha
      model: scripted/default
    variants:
      - id: good
        temperature: 0.3
        top_p: 0.9
      - temperature: 0.7
        max_tokens: 120
        behavior_template: critic
      - initial_message: Write a serious memo.
    eval:
      evaluator_id: helpful
      metric: score
      rubric: joke_quality
      prompts: ["is it funny"]
      judge_version: "2"
"""


def write(tmp_path: Path, text: str, name: str = "r.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_an_original_file_runs_with_its_ids_kept_and_its_extra_keys_warned_about(
    tmp_path: Path,
) -> None:
    loaded = load_rollout(write(tmp_path, ORIGINAL), CATALOG)
    assert [a.key for a in loaded.arms] == [
        "joke_team/good/r0",
        "joke_team/v002/r0",
        "joke_team/v003/r0",
    ]
    good, mediocre, memo = loaded.arms
    assert (good.agent.temperature, good.agent.top_p, good.agent.model) == (
        0.3,
        0.9,
        "scripted/default",
    )
    assert (mediocre.agent.max_tokens, mediocre.agent.persona) == (120, "critic")
    assert good.agent.tools == ["get_weather"]  # the agent's own, where no variant sets them
    assert (good.message, memo.message) == ("Tell me a joke about space.", "Write a serious memo.")
    path = tmp_path / "r.yml"
    assert loaded.warnings == [
        f"{path}:18: 'rubric' is ignored here: an evaluator's rubric is its own "
        "(config/evals.yml); name the evaluator",
        f"{path}:19: 'prompts' is ignored here: the original only used it to decide whether "
        "to judge; an evaluator is named",
        f"{path}:20: 'judge_version' is ignored here: an evaluator's version is its own "
        "(config/evals.yml)",
    ]


def test_a_grid_repeats_and_inputs_multiply_going_round_the_variants(tmp_path: Path) -> None:
    text = """\
repeats: 2
inputs: [weather in Paris, weather in Oslo]
teams:
  t:
    base: {agent_id: agent_alpha}
    variants: {model: [scripted/a, scripted/b], temperature: [0.1, 0.2, 0.3]}
"""
    arms = load_rollout(write(tmp_path, text), CATALOG).arms
    assert len(arms) == 2 * 3 * 2 * 2
    # Every variant runs a case before any runs the next, and every case before a repeat.
    first = "t/model=scripted:a,temperature=0.1"
    assert [a.key for a in arms[::6]] == [
        f"{first}/c0-r0",
        f"{first}/c1-r0",
        f"{first}/c0-r1",
        f"{first}/c1-r1",
    ]
    assert [a.variant for a in arms[:6]] == [
        f"model=scripted:{m},temperature={t}" for m in "ab" for t in (0.1, 0.2, 0.3)
    ]
    assert len({a.key for a in arms}) == len(arms)
    assert [(a.agent.model, a.agent.temperature) for a in arms[:6]] == [
        ("scripted/a", 0.1), ("scripted/a", 0.2), ("scripted/a", 0.3),
        ("scripted/b", 0.1), ("scripted/b", 0.2), ("scripted/b", 0.3),
    ]  # fmt: skip
    assert {a.message for a in arms if a.case == 1} == {"weather in Oslo"}


def test_inputs_from_a_jsonl_dataset_beside_the_file(tmp_path: Path) -> None:
    (tmp_path / "cases.jsonl").write_text('{"message": "one"}\n\n{"message": "two"}\n')
    text = (
        "inputs: cases.jsonl\nteams:\n  t:\n    base: {agent_id: agent_beta}\n    variants: [{}]\n"
    )
    loaded = load_rollout(write(tmp_path, text), CATALOG)
    assert loaded.inputs == ["one", "two"] and [a.message for a in loaded.arms] == ["one", "two"]
    (tmp_path / "cases.jsonl").write_text('{"message": "one"}\n{"text": "two"}\n')
    with pytest.raises(ConfigError, match=r"cases.jsonl:2: needs a \"message\" of text"):
        load_rollout(tmp_path / "r.yml", CATALOG)


TEAM = "teams:\n  t:\n    base: {agent_id: agent_alpha}\n    initial_message: hi\n"


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("teams:\n\tt: {}\n", 2, "a tab in the indentation"),
        ("teams: [1,\n", 2, "not valid YAML"),
        ("teems: {}\n", 1, "'teems': Extra inputs are not permitted"),
        (TEAM + "    variants: [{colour: red}]\n", 5, "'teams.t.variants.0.colour': Extra inputs"),
        (
            TEAM + "    variants:\n      - temperature: 3\n",
            6,
            "'teams.t.variants.0.temperature': Input should be less than or equal to 2",
        ),
        (TEAM + "    variants: [{top_p: 0}]\n", 5, "'teams.t.variants.0.top_p'"),
        (TEAM + "    variants: {}\n", 5, "'teams.t.variants': "),
        (TEAM + "    variants: {model: []}\n", 5, "grid key 'model' has no values"),
        (TEAM + "    variants: {colour: [red]}\n", 5, "grid key 'colour' is no variant setting"),
        (
            TEAM + "    variants:\n      - {}\n      - {agent_id: agent_gamma}\n",
            7,
            "unknown agent 'agent_gamma'; agents: agent_alpha, agent_beta",
        ),
        (TEAM + "    variants:\n      - {tools: [teleport]}\n", 6, "unknown tool 'teleport'"),
        (TEAM + "    variants:\n      - {persona: pirate}\n", 6, "unknown persona 'pirate'"),
        (
            TEAM + "    variants: [{}]\n    eval: {evaluator_id: vibes}\n",
            6,
            "unknown evaluator 'vibes'",
        ),
        (TEAM + "    variants: [{id: a}, {id: a}]\n", 5, "variant id 'a' is used twice"),
        (
            "teams:\n  t:\n    base: {agent_id: agent_alpha}\n    variants: [{}]\n",
            4,
            "no initial_message",
        ),
        (
            "repeats: 0\n" + TEAM + "    variants: [{}]\n",
            1,
            "'repeats': Input should be greater than or equal to 1",
        ),
        (
            "baseline: nope\n" + TEAM + "    variants: [{id: a}]\n",
            1,
            "'baseline': 'nope' names no variant; variants: t/a",
        ),
        (
            "max_arms: 5\nrepeats: 3\n" + TEAM + "    variants: [{}, {}]\n",
            3,
            "6 arms is more than max_arms (5)",
        ),
        ("inputs: missing.jsonl\n" + TEAM + "    variants: [{}]\n", 1, "no dataset"),
    ],
)
def test_a_bad_file_is_one_error_naming_its_line_and_field(
    tmp_path: Path, text: str, line: int, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_rollout(path, CATALOG)
    message = str(error.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert problem in message, message
    assert "\n" not in message


def test_a_baseline_is_a_variant_of_one_team_or_team_and_variant(tmp_path: Path) -> None:
    other = "  u:\n    base: {agent_id: agent_beta}\n    initial_message: hi\n"
    two = TEAM + "    variants: [{id: a}]\n" + other + "    variants: [{id: a}, {id: b}]\n"
    assert load_rollout(write(tmp_path, "baseline: b\n" + two), CATALOG).spec.baseline == "b"
    assert load_rollout(write(tmp_path, "baseline: u/a\n" + two), CATALOG).spec.baseline == "u/a"
    with pytest.raises(ConfigError, match="'a' is in several teams; name team/variant"):
        load_rollout(write(tmp_path, "baseline: a\n" + two), CATALOG)


@pytest.mark.parametrize(
    "name",
    ["demo", "weather", "task_with_payment", "competitive_payment", "hierarchical_distribution"],
)
def test_every_shipped_example_loads_against_the_shipped_team(name: str) -> None:
    from p2engine.runtime.catalog import load_catalog
    from p2engine.runtime.settings import PROJECT_ROOT, Settings

    path = PROJECT_ROOT / "config" / "rollouts" / f"{name}.yml"
    loaded = load_rollout(path, load_catalog(Settings()))
    assert loaded.arms and loaded.warnings == []
    assert len({a.key for a in loaded.arms}) == len(loaded.arms)


def test_the_demo_runs_enough_pairs_for_its_comparison_to_find_a_difference() -> None:
    from p2engine.evals.variants import pairs_needed
    from p2engine.runtime.catalog import load_catalog
    from p2engine.runtime.settings import PROJECT_ROOT, Settings

    demo = load_rollout(PROJECT_ROOT / "config" / "rollouts" / "demo.yml", load_catalog(Settings()))
    variants = len({a.variant for a in demo.arms})
    assert variants >= 3 and demo.spec.baseline is not None
    assert demo.spec.repeats >= pairs_needed(variants - 1)
    assert {(a.agent.model or "").split("/")[0] for a in demo.arms} == {"scripted"}


@pytest.mark.parametrize(
    "text", ["\u0661\u0660m", "5\u00b2m", "\u0661h", "0m", "10", "m", "-5m", "1.5h", "soon"]
)
def test_a_schedule_interval_takes_ascii_digits_and_a_unit_only(text: str) -> None:
    from p2engine.contract.errors import InvalidInput
    from p2engine.runtime.rollouts import parse_every

    with pytest.raises(InvalidInput, match="--every takes a number and s, m, h or d"):
        parse_every(text)


def test_a_schedule_interval_in_each_unit() -> None:
    from datetime import timedelta

    from p2engine.runtime.rollouts import parse_every

    assert [parse_every(t) for t in ("90s", "15m", "1h", "2d")] == [
        timedelta(seconds=90), timedelta(minutes=15), timedelta(hours=1), timedelta(days=2),
    ]  # fmt: skip


def test_a_schedule_reads_as_text_not_as_python_values(capsys: pytest.CaptureFixture[str]) -> None:
    from p2engine.cli.rollouts import _print_schedule

    _print_schedule(
        {
            "id": "rollout-schedule-nightly", "file": "config/rollouts/demo.yml",
            "cron": [], "every": ["1:00:00"], "overlap": "skip", "paused": True,
            "note": "paused for maintenance", "runs": 3, "skipped": 1, "running": [],
            "recent": [{"due": "2026-12-05T20:00:00+00:00", "rollout": "rollout-nightly-1"}],
            "next": ["2026-12-05T22:00:00+00:00"],
        }
    )  # fmt: skip
    out = capsys.readouterr().out
    assert "[" not in out and "{" not in out and "None" not in out and "True" not in out
    assert "  state:    paused" in out and "  file:     config/rollouts/demo.yml" in out
    assert "  next:     2026-12-05 22:00:00" in out
    assert "    2026-12-05 20:00:00  rollout-nightly-1" in out


def test_a_huge_grid_is_counted_by_arithmetic_and_refused_before_it_is_expanded(
    tmp_path: Path,
) -> None:
    # 3 keys of 1,000 values: a billion variants; no list of them is ever made.
    grid = ", ".join(f"{t / 1000:.3f}" for t in range(1000))
    path = write(tmp_path, (
        "max_arms: 1000000000000\nteams:\n  t:\n    initial_message: hi\n"
        "    base: {agent_id: agent_alpha}\n"
        f"    variants: {{temperature: [{grid}], top_p: [{grid.replace('0.000', '0.001')}], "
        f"max_tokens: [{', '.join(str(n) for n in range(1, 1001))}]}}\n"
    ))  # fmt: skip
    with pytest.raises(ConfigError, match=r"1000000000 arms is more than p2e runs in one rollout"):
        load_rollout(path, CATALOG)


def test_huge_repeats_under_a_raised_max_arms_are_refused_by_arithmetic(tmp_path: Path) -> None:
    path = write(tmp_path, (
        "repeats: 1000000000\nmax_arms: 1000000000000\nteams:\n  t:\n    initial_message: hi\n"
        "    base: {agent_id: agent_alpha}\n    variants: [{id: a}, {id: b}]\n"
    ))  # fmt: skip
    with pytest.raises(ConfigError, match=r"r\.yml:1: 'repeats': 2000000000 arms is more than"):
        load_rollout(path, CATALOG)
    from p2engine.workflows.expansion import arm_count, variant_count

    loaded_small = write(tmp_path, (
        "repeats: 3\nteams:\n  t:\n    initial_message: hi\n    base: {agent_id: agent_alpha}\n"
        "    variants: {temperature: [0.1, 0.2], top_p: [0.5, 0.9, 1.0]}\n"
    ), name="small.yml")  # fmt: skip
    small = load_rollout(loaded_small, CATALOG)
    assert variant_count(small.spec.teams["t"]) == 6 and arm_count(small.spec, 1) == 18
    assert small.plan.total == len(small.arms) == 18
