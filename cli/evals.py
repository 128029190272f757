"""`p2e eval`: the evaluators that score conversations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from cli.common import (
    AddressOption,
    JsonOption,
    NamespaceOption,
    console,
    print_json,
    run_async,
    settings_for,
)
from runtime.settings import load_settings

if TYPE_CHECKING:
    from runtime.conversations import ConversationSummary
    from runtime.settings import Settings

app = typer.Typer(help="Evaluators that score conversation steps.", no_args_is_help=True)

MEAN = "score"  # `eval top --metric`: the mean of every evaluator, P2eScore


@app.command("list")
def list_evaluators(as_json: JsonOption = False) -> None:
    """List the evaluators `--eval` and agents.yml `eval:` can name: built in, from plugins,
    and configured in config/evals.yml."""
    from evals.config import load_evaluators
    from evals.registry import registered_evaluators

    settings = load_settings()
    load_evaluators(settings.evals_file)
    evaluators = registered_evaluators()
    if as_json:
        print_json(
            [
                {
                    "id": e.id,
                    "version": e.version,
                    "kind": e.kind,
                    "trigger": e.trigger,
                    "source": e.source,
                    "description": e.description,
                }
                for e in evaluators
            ]
        )
        return
    table = Table(title=f"Evaluators (built in, plugins, {settings.evals_file.name})")
    for column in ("id", "kind (from)", "scores"):
        table.add_column(column, no_wrap=True)
    table.add_column("description")
    scores = {"step": "each step", "tool": "tool results", "final": "final answer"}
    for e in evaluators:
        table.add_row(
            f"{e.id} v{e.version}", f"{e.kind} ({e.source})", scores[e.trigger], e.description
        )
    console.print(table)


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
    table = Table(title=f"{data['conversation_id']} · {data['status']}")
    for column in ("step", "entry", "evaluator", "score"):
        table.add_column(column, no_wrap=True)
    table.add_column("why")
    for e in data["evaluations"]:
        score = "error" if e["score"] is None else f"{e['score']:.2f}"
        why = e["error"] if e["score"] is None else e["rationale"]
        table.add_row(str(e["step"]), e["kind"], f"{e['evaluator']} v{e['version']}", score, why)
    console.print(table)
    mean = data["score"]
    console.print("no evaluations" if mean is None else f"mean score {mean:.2f}", highlight=False)


async def _scores(settings: Settings, conversation: str) -> dict[str, Any]:
    from cli.conversation import stack_of
    from contract.evals import Evaluation
    from store.artifacts import ArtifactDirectory, ArtifactNotFound
    from workflows.evaluations import mean

    found = await stack_of(settings, conversation)
    store = ArtifactDirectory(settings.artifacts_dir)
    rows: list[dict[str, Any]] = []
    for entry in found.stack:
        for outcome in entry.evaluations:
            rationale = ""
            if outcome.ref is not None:
                try:
                    record = Evaluation.model_validate_json(store.get_text(outcome.ref))
                    rationale = record.score.rationale if record.score else ""
                except ArtifactNotFound:
                    rationale = "(the record is in another machine's artifact store)"
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
            "-m",
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
                    "status": c.status.name.lower() if c.status else None,
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
            c.status.name.lower() if c.status else "-",
            "-" if c.step is None else str(c.step),
            f"{c.started:%Y-%m-%d %H:%M}",
        )
    console.print(table)


def _known_evaluator(settings: Settings, evaluator_id: str) -> str:
    """`evaluator_id`, or UnknownEvaluator naming the known ones."""
    from evals.config import load_evaluators
    from evals.registry import get_evaluator

    load_evaluators(settings.evals_file)
    return get_evaluator(evaluator_id).id


async def _top(
    settings: Settings, agent: str | None, evaluator: str | None, limit: int
) -> list[ConversationSummary]:
    from runtime.conversations import ConversationClient

    return await ConversationClient(settings).top_scored(limit, agent, evaluator)
