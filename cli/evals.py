"""`p2e eval`: the evaluators that score conversations."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from p2engine.cli.common import (
    AddressOption,
    JsonOption,
    NamespaceOption,
    console,
    print_json,
    run_async,
    serving,
    settings_for,
)
from p2engine.cli.tables import Col, print_table
from p2engine.contract.names import status_name
from p2engine.runtime.settings import load_settings

if TYPE_CHECKING:
    from p2engine.contract.evals import PairOutcome, RewardOutcome
    from p2engine.evals.registry import Evaluator, PairEvaluator
    from p2engine.runtime.conversations import ConversationSummary
    from p2engine.runtime.settings import Settings

app = typer.Typer(help="Evaluators that score conversation steps.", no_args_is_help=True)

MEAN = "score"  # `eval top --metric`: the mean of every evaluator, P2eScore
PAIRS = "pairs"  # what `eval list` says a pairwise evaluator scores
DEFAULT_PAIRWISE = "better_answer"  # shipped in config/evals.yml


@app.command("list")
def list_evaluators(as_json: JsonOption = False) -> None:
    """List the evaluators `--eval` and agents.yml `eval:` can name: built in, from plugins,
    and configured in config/evals.yml."""
    from p2engine.evals.config import load_evaluators
    from p2engine.evals.registry import registered_evaluators, registered_pairwise

    settings = load_settings()
    load_evaluators(settings.evals_file)
    rows: list[tuple[Evaluator | PairEvaluator, str]] = [
        *((e, e.trigger) for e in registered_evaluators()),
        *((p, PAIRS) for p in registered_pairwise()),
    ]
    rows.sort(key=lambda row: row[0].id)
    if as_json:
        print_json(
            [
                {
                    "id": e.id,
                    "version": e.version,
                    "kind": e.kind,
                    "trigger": trigger,
                    "source": e.source,
                    "description": e.description,
                }
                for e, trigger in rows
            ]
        )
        return
    table = Table(title=f"Evaluators (built in, plugins, {settings.evals_file.name})")
    for column in ("id", "kind (from)", "scores"):
        table.add_column(column, no_wrap=True)
    table.add_column("description")
    scores = {"step": "each step", "tool": "tool results", "final": "final answer"}
    scores[PAIRS] = "two answers (eval compare)"
    for e, trigger in rows:
        table.add_row(
            f"{e.id} v{e.version}", f"{e.kind} ({e.source})", scores[trigger], e.description
        )
    console.print(table)


@app.command("compare")
def compare(
    a: Annotated[str, typer.Argument(help="A finished conversation (conv-NAME or NAME).")],
    b: Annotated[str, typer.Argument(help="Another, answering the same question.")],
    evaluator: Annotated[
        str, typer.Option("--eval", "-e", help="A pairwise evaluator (`p2e eval list`).")
    ] = DEFAULT_PAIRWISE,
    as_json: JsonOption = False,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Compare two conversations' answers to the same question with a pairwise judge. The
    order the judge sees them in is drawn at random and recorded, so that over many
    comparisons its bias for a position cancels out; the verdict is stored as a Comparison
    record (`p2e artifact cat REF`)."""
    settings = settings_for(address, namespace)
    outcome = run_async(_compare(settings, a, b, evaluator))
    if as_json:
        print_json(outcome.model_dump(mode="json"))
        return
    first, second = (b, a) if outcome.swapped else (a, b)
    if outcome.value is None:
        console.print(f"no verdict: {outcome.error}", highlight=False)
        raise typer.Exit(1)
    names = {"a": f"A ({a})", "b": f"B ({b})", "tie": "a tie"}
    verdict = names[outcome.winner or "tie"]
    console.print(
        f"{outcome.evaluator_id} v{outcome.version}: {verdict}, preference for A "
        f"{outcome.value:.2f} (shown {first} first, then {second})",
        highlight=False,
    )
    if outcome.ref:
        console.print(f"record: {outcome.ref}", highlight=False)


@app.command("show")
def show(
    conversation: Annotated[str, typer.Argument(help="Conversation id (conv-NAME) or NAME.")],
    as_json: JsonOption = False,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Show a conversation's scores: per step, each evaluator's score and reason, and the
    mean."""
    settings = settings_for(address, namespace)
    data = run_async(_scores(settings, conversation))
    if as_json:
        print_json(data)
        return
    columns = [
        Col("step", "number"),
        Col("entry", drop=2),
        Col("evaluator"),
        Col("score", "number"),
        Col("reward"),
        Col("why", "text", drop=1),
    ]
    rows = [
        [
            str(e["step"]),
            e["kind"],
            f"{e['evaluator']} v{e['version']}",
            "error" if e["score"] is None else f"{e['score']:.2f}",
            reward_text(e["reward"]),
            e["error"] if e["score"] is None else e["rationale"],
        ]
        for e in data["evaluations"]
    ]
    print_table(console, f"{data['conversation_id']} · {data['status']}", columns, rows)
    mean = data["score"]
    console.print("no evaluations" if mean is None else f"mean score {mean:.2f}", highlight=False)
    rewards = [e["reward"] for e in data["evaluations"] if e["reward"]]
    if paid := [r for r in rewards if r["status"] == "paid"]:
        total = sum(Decimal(r["amount"]) for r in paid)
        console.print(f"rewards paid: {total:.2f} in {len(paid)} transfers", highlight=False)


def _reward(reward: RewardOutcome | None) -> dict[str, Any] | None:
    """What an evaluation paid, with its amount as money is written everywhere (`4.00`)."""
    if reward is None:
        return None
    return {**reward.model_dump(mode="json"), "amount": f"{reward.amount:.2f}"}


def reward_text(reward: dict[str, Any] | None) -> str:
    """`paid 5.00`, `skipped`, `failed`, or `-` when the evaluation pays nothing."""
    if not reward:
        return "-"
    if reward["status"] == "paid":
        return f"paid {Decimal(reward['amount']):.2f}"
    return str(reward["status"])


async def _scores(settings: Settings, conversation: str) -> dict[str, Any]:
    from p2engine.cli.conversation import stack_of
    from p2engine.contract.evals import Evaluation
    from p2engine.store import store_for
    from p2engine.store.base import ArtifactNotFound
    from p2engine.workflows.evaluations import mean

    found = await stack_of(settings, conversation)
    rationales: dict[str, str] = {}
    async with store_for(settings) as store:
        for outcome in (o for e in found.stack for o in e.evaluations if o.ref is not None):
            assert outcome.ref is not None
            try:
                record = Evaluation.model_validate_json(await store.get_text(outcome.ref))
                rationales[outcome.ref] = record.score.rationale if record.score else ""
            except ArtifactNotFound:
                rationales[outcome.ref] = f"(the record is not in {store.location})"
    rows: list[dict[str, Any]] = []
    for entry in found.stack:
        for outcome in entry.evaluations:
            rationale = rationales.get(outcome.ref, "") if outcome.ref is not None else ""
            rows.append(
                {
                    "step": entry.step,
                    "kind": str(entry.kind),
                    "target": entry.ref,
                    "evaluator": outcome.evaluator_id,
                    "version": outcome.version,
                    "score": outcome.value,
                    "error": outcome.error,
                    "rationale": rationale,
                    "ref": outcome.ref,
                    "reward": _reward(outcome.reward),
                    "tokens": outcome.usage.total_tokens if outcome.usage else 0,
                    "cost_usd": outcome.usage.cost_usd if outcome.usage else 0.0,
                }
            )
    values = [r["score"] for r in rows if r["score"] is not None]
    return {
        "conversation_id": found.conversation_id,
        "status": found.status,
        "score": mean(values),
        "evaluations": rows,
    }


@app.command("top")
def top(
    agent: Annotated[str | None, typer.Option("--agent", "-a", help="Only this agent's.")] = None,
    metric: Annotated[
        str,
        typer.Option(
            "--metric",
            help=f"'{MEAN}' (of every evaluator, the default) or an evaluator's id: rank by "
            "its mean, over closed conversations.",
        ),
    ] = MEAN,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many to show.")] = 10,
    as_json: JsonOption = False,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Rank conversations by their mean score (P2eScore in visibility), or by one
    evaluator's mean (kept in their memo as they close), best first."""
    settings = settings_for(address, namespace)
    evaluator = None if metric == MEAN else _known_evaluator(settings, metric)
    ranked = run_async(_top(settings, agent, evaluator, limit))

    def value(c: ConversationSummary) -> float | None:
        return c.score if evaluator is None else c.scores.get(evaluator)

    if as_json:
        print_json(
            [
                {
                    "conversation_id": c.id,
                    "agent": c.agent,
                    "metric": metric,
                    "value": value(c),
                    "score": c.score,
                    "status": status_name(c.status),
                    "steps": c.step,
                    "started": c.started.isoformat(),
                }
                for c in ranked
            ]
        )
        return
    if not ranked:
        console.print("no scored conversations yet")
        return
    title = "Best-scored conversations" + ("" if evaluator is None else f" by {evaluator}")
    table = Table(title=title)
    for column in ("conversation", "agent", metric, "status", "steps", "started"):
        table.add_column(column, no_wrap=True)
    for c in ranked:
        table.add_row(
            c.id,
            c.agent or "-",
            f"{value(c) or 0.0:.2f}",
            status_name(c.status),
            "-" if c.step is None else str(c.step),
            f"{c.started:%Y-%m-%d %H:%M}",
        )
    console.print(table)


async def _compare(settings: Settings, a: str, b: str, evaluator: str) -> PairOutcome:
    from p2engine.runtime.conversations import ConversationClient

    conversations = ConversationClient(settings)
    pair = await conversations.pair(a, b, evaluator)
    async with serving(await conversations.temporal(), settings):
        return await conversations.compare(pair)


def _known_evaluator(settings: Settings, evaluator_id: str) -> str:
    """`evaluator_id`, or UnknownEvaluator naming the known ones."""
    from p2engine.evals.config import load_evaluators
    from p2engine.evals.registry import get_evaluator

    load_evaluators(settings.evals_file)
    return get_evaluator(evaluator_id).id


async def _top(
    settings: Settings, agent: str | None, evaluator: str | None, limit: int
) -> list[ConversationSummary]:
    from p2engine.runtime.conversations import ConversationClient

    return await ConversationClient(settings).top_scored(limit, agent, evaluator)
