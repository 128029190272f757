"""How rollouts look in the terminal: the live table of a running rollout, the comparison
of its variants, its arms, and the rows an export writes."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.text import Text

from p2engine.cli.tables import Col, Fitted, fit

if TYPE_CHECKING:
    from rich.console import Console

    from p2engine.contract.rollouts import (
        ArmRecord,
        Estimate,
        RolloutProgress,
        VariantComparison,
        VariantTally,
    )

EXPORT_FIELDS = (
    "key", "team", "variant", "case", "repeat", "workflow_id", "agent_id", "status", "reason",
    "error", "score", "passed", "reward", "prompt_tokens", "completion_tokens", "cost_usd",
    "judge_cost_usd", "latency_s", "steps", "tool_calls", "transactions", "net_flow", "config",
)  # fmt: skip


def _t_quantile(n: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.975, n - 1))


def live_score(t: VariantTally) -> str:
    """The running mean score with its 95% t interval's half-width, from the sums."""
    if not t.scored:
        return "-"
    mean = t.score_sum / t.scored
    if t.scored < 2:
        return f"{mean:.2f}"
    variance = max(0.0, (t.score_squares - t.scored * mean**2) / (t.scored - 1))
    half = _t_quantile(t.scored) * math.sqrt(variance / t.scored)
    return f"{mean:.2f} ± {half:.2f}"


def live_table(
    console: Console, progress: RolloutProgress, flows: Mapping[str, tuple[int, Any]]
) -> Fitted:
    """One row per variant: how its arms ended so far, and their means."""
    teams = len({t.team for t in progress.variants}) > 1
    not_run = [c for c in ("skipped", "cancelled") if any(getattr(t, c) for t in progress.variants)]
    columns = [
        *([Col("team")] if teams else []),
        Col("variant"),
        Col("done", "number"),
        Col("failed", "number"),
        *[Col(c, "number") for c in not_run],
        Col("score ± CI"),
        Col("tokens", "number", drop=3),
        Col("cost $", "number", drop=1),
        Col("latency s", "number", drop=4),
        Col("tx", "number", drop=2),
    ]
    rows = []
    for t in progress.variants:
        ran = max(1, t.done + t.failed)
        tx, _ = flows.get(t.key, (0, 0))
        rows.append(
            [
                *([t.team] if teams else []),
                t.variant,
                f"{t.done}/{t.total}",
                str(t.failed) if t.failed else "",
                *[str(getattr(t, c)) if getattr(t, c) else "" for c in not_run],
                live_score(t),
                f"{t.tokens / ran:.0f}",
                f"{t.cost_usd / ran:.4f}",
                f"{t.latency_s / ran:.2f}",
                str(tx),
            ]
        )
    return fit(
        console, f"{progress.rollout_id} · {progress.phase} · {arm_counts(progress)}", columns, rows
    )


def arm_counts(progress: RolloutProgress) -> str:
    """`48 done, 352 cancelled of 400 arms · 3 running`: each outcome apart, never summed
    into one count that would read as done."""
    counts = {
        "done": sum(t.done for t in progress.variants),
        "failed": sum(t.failed for t in progress.variants),
        "skipped": sum(t.skipped for t in progress.variants),
        "cancelled": sum(t.cancelled for t in progress.variants),
    }
    parts = [f"{n} {what}" for what, n in counts.items() if n or what == "done"]
    running = f" · {progress.running} running" if progress.running else ""
    return f"{', '.join(parts)} of {progress.total} arms{running}"


def _mean(e: Estimate | None, signed: bool = False) -> str:
    return "-" if e is None else f"{e.mean:{'+' if signed else ''}.2f}"


def _interval(e: Estimate | None) -> str:
    if e is None or e.low is None or e.high is None:
        return "-"
    return f"[{e.low:.2f}, {e.high:.2f}]"


def _p(value: float | None) -> str:
    return "-" if value is None else ("<0.001" if value < 0.001 else f"{value:.3f}")


def comparison_view(console: Console, comparison: VariantComparison) -> list[Fitted | Text]:
    """The variants side by side, in two tables (the metric, then what it cost): the best
    marked, differences from the baseline with their corrected p-values, and those that
    are not significant said to be so; the legend and notes between them."""
    teams = len({v.team for v in comparison.variants}) > 1
    score_rows: list[list[str | Text]] = []
    cost_rows: list[list[str | Text]] = []
    for v in comparison.variants:
        name = v.key if teams else v.variant
        marks = ("★ " if v.key == comparison.best else "") + (
            "◆ " if v.key in comparison.pareto else ""
        )
        versus, versus_ci, p, effect = "-", "-", "-", "-"
        if v.key == comparison.baseline:
            versus = "baseline"
        style = ""
        if v.versus is not None:
            versus = _mean(v.versus.difference, signed=True) + ("" if v.versus.paired else " (u)")
            versus_ci = _interval(v.versus.difference)
            p = _p(v.versus.p_holm)
            if not v.versus.significant:
                p += " n.s.*" if v.versus.underpowered else " n.s."
                style = "dim"
            if v.versus.effect_size is not None:
                effect = f"{v.versus.effect_size:+.2f}"
        not_done = ", ".join(
            f"{n} {what}"
            for n, what in (
                (v.failed, "failed"),
                (v.skipped, "skipped"),
                (v.cancelled, "cancelled"),
            )
            if n
        )
        score_rows.append(
            [marks + name, str(v.done), not_done or "-", _mean(v.metric), _interval(v.metric),
             Text(versus, style=style), Text(versus_ci, style=style), Text(p, style=style),
             effect]
        )  # fmt: skip
        cost_rows.append(
            [
                name,
                f"{v.success_rate:.0%}",
                f"{v.tokens:.0f}",
                f"{v.cost_usd:.4f}",
                f"{v.latency_s:.2f}",
                str(v.reward),
                str(v.transactions),
                str(v.net_flow),
            ]
        )
    # Against no baseline there is nothing to subtract: the difference columns go.
    against = 9 if comparison.baseline else 5
    scores = fit(
        console,
        f"Comparison on {comparison.metric}, 95% intervals, against "
        f"{comparison.baseline or 'no baseline'}",
        [
            Col("variant"),
            Col("done", "number"),
            Col("not done", drop=4),
            Col(comparison.metric, "number"),
            Col("95% CI", drop=2),
            Col("difference", "number"),
            Col("diff CI", drop=3),
            Col("p Holm", "number"),
            Col("d", "number", drop=1),
        ][:against],
        [row[:against] for row in score_rows],
    )
    costs = fit(
        console,
        "Per arm: passed, spent and took; all arms: rewards, transfers, net flow",
        [
            Col("variant"),
            Col("pass", "number"),
            Col("tokens", "number", drop=3),
            Col("cost $", "number"),
            Col("latency s", "number", drop=4),
            Col("reward", "number", drop=1),
            Col("tx", "number", drop=5),
            Col("net flow", "number", drop=2),
        ],
        cost_rows,
    )
    legend = ("★ best mean · " if comparison.best else "") + "◆ on the cost/score Pareto front"
    if comparison.baseline:
        legend += (
            " · difference: variant - baseline (u: unpaired) · n.s.: not significant"
            " (Holm p >= 0.05), *: too few pairs to be · d: effect size"
        )
    lines = [Text(legend, style="dim")]
    lines += [Text(f"note: {n}", style="dim") for n in comparison.notes]
    return [scores, *lines, costs]


def print_comparison(console: Console, comparison: VariantComparison) -> None:
    for part in comparison_view(console, comparison):
        if isinstance(part, Fitted):
            part.print(console)
        else:
            console.print(part)


def arms_table(console: Console, title: str, records: Sequence[ArmRecord]) -> Fitted:
    columns = [
        Col("arm"),
        Col("status"),
        Col("score", "number"),
        Col("config", drop=1),
        Col("steps", "number", drop=3),
        Col("tokens", "number", drop=4),
        Col("cost $", "number", drop=2),
        Col("latency s", "number", drop=5),
        Col("tx", "number", drop=6),
        Col("error", "text"),
    ]
    rows = [
        [
            r.key,
            r.status,
            "-" if r.score is None else f"{r.score:.2f}",
            r.config or "-",
            str(r.steps),
            str(r.tokens),
            f"{r.cost_usd:.4f}",
            f"{r.latency_s:.2f}",
            str(r.transactions),
            r.error or "",
        ]
        for r in records
    ]
    return fit(console, title, columns, rows)


def export_row(record: ArmRecord) -> dict[str, Any]:
    data = record.model_dump(mode="json")
    return {name: data[name] for name in EXPORT_FIELDS}
