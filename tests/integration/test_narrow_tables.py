"""At 80 columns every table a user reads ids and numbers from prints them whole: no "…",
no id folded across lines. What does not fit is left out and named; `--json` has it all."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_cli import p2e
from tests.integration.test_ledger_cli import own_ledger

__all__ = ["own_ledger"]

ROLLOUT = (
    "repeats: 2\nteams:\n  weather_desk_with_a_long_name:\n"
    "    initial_message: What's the weather in Paris?\n"
    "    base: {agent_id: agent_alpha, model: scripted/default}\n"
    "    variants: [{id: plain_variant_with_a_long_name}, {id: without_any_tools, tools: []}]\n"
    "    eval: {evaluator_id: helpful}\n"
    "baseline: plain_variant_with_a_long_name\n"
)


def narrow(env: dict[str, str], *args: str) -> str:
    done = p2e(*args, env={**env, "COLUMNS": "80"})
    assert done.returncode == 0, done.stderr
    assert "…" not in done.stdout, done.stdout
    return done.stdout


def as_json(env: dict[str, str], *args: str) -> Any:
    done = p2e(*args, "--json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def whole(value: str, table: str) -> None:
    """`value` appears on one line of `table`, uncut."""
    assert any(value in line for line in table.splitlines()), f"{value!r} not whole in:\n{table}"


@pytest.fixture
def long_names(own_ledger: dict[str, str], tmp_path: Path) -> dict[str, str]:
    suffix = uuid.uuid4().hex
    names = {
        "conversation": f"a-conversation-named-at-length-{suffix}",
        "rollout": f"a-rollout-named-at-length-{suffix}",
        "transfer": f"a-transfer-named-at-length-{suffix}",
    }
    ran = p2e("run", "--id", names["conversation"], "weather in Paris", env=own_ledger)
    assert ran.returncode == 0, ran.stderr
    path = tmp_path / "long.yml"
    path.write_text(ROLLOUT)
    started = p2e("rollout", "start", str(path), "--follow", "--id", names["rollout"],
                  env={**own_ledger, "COLUMNS": "80"})  # fmt: skip
    assert started.returncode == 0, started.stderr
    assert "…" not in started.stdout, started.stdout
    paid = p2e("ledger", "transfer", "agent_alpha", "agent_beta", "12.34", "--id",
               names["transfer"], "--reason", "a reason long enough to need wrapping " * 2,
               env=own_ledger)  # fmt: skip
    assert paid.returncode == 0, paid.stderr
    return names


def test_conversation_list_at_80_columns(
    own_ledger: dict[str, str], long_names: dict[str, str]
) -> None:
    table = narrow(own_ledger, "conversation", "list", "--limit", "20")
    rows = as_json(own_ledger, "conversation", "list", "--limit", "20")
    for row in rows:
        whole(row["id"], table)
    whole(f"conv-{long_names['conversation']}", table)


def test_rollout_list_show_status_and_compare_at_80_columns(
    own_ledger: dict[str, str], long_names: dict[str, str]
) -> None:
    rollout = f"rollout-{long_names['rollout']}"
    listed = narrow(own_ledger, "rollout", "list")
    whole(rollout, listed)

    shown = narrow(own_ledger, "rollout", "show", rollout)
    for arm in as_json(own_ledger, "rollout", "show", rollout):
        whole(arm["key"], shown)
        whole(f"{arm['score']:.2f}", shown)

    status = narrow(own_ledger, "rollout", "status", rollout)
    whole(rollout, status)
    for variant in as_json(own_ledger, "rollout", "status", rollout)["variants"]:
        whole(variant["variant"], status)

    compared = narrow(own_ledger, "rollout", "compare", rollout)
    comparison = as_json(own_ledger, "rollout", "compare", rollout)
    for v in comparison["variants"]:
        whole(v["variant"], compared)
        whole(f"{v['metric']['mean']:.2f}", compared)
        if v["versus"] and v["versus"]["difference"]:
            whole(f"{v['versus']['difference']['mean']:+.2f}", compared)


def test_ledger_history_at_80_and_140_columns(
    own_ledger: dict[str, str], long_names: dict[str, str]
) -> None:
    for width in ("80", "140"):
        done = p2e("ledger", "history", "agent_alpha", env={**own_ledger, "COLUMNS": width})
        assert done.returncode == 0, done.stderr
        assert "…" not in done.stdout
        for receipt in as_json(own_ledger, "ledger", "history", "agent_alpha"):
            whole(receipt["transfer_id"], done.stdout)
            whole(receipt["amount"], done.stdout)
    whole(f"user:{long_names['transfer']}", done.stdout)
