"""How rollouts look in the terminal: the live table of a running rollout, the comparison
of its variants, its arms, and the rows an export writes."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
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
    "judge_cost_usd", "latency_s", "steps", "tool_calls", "transactions", "net_flow",
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


def _table(title: str) -> Table:
    """A table that fits 80 columns as well as it can: no outer box, one space apart."""
    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1))


def live_table(progress: RolloutProgress, flows: Mapping[str, tuple[int, Any]]) -> Table:
    """One row per variant: how many arms have finished, and their means so far."""
    table = _table(f"{progress.rollout_id} · {progress.phase} · {arm_counts(progress)}")
    teams = len({t.team for t in progress.variants}) > 1
    if teams:
        table.add_column("team", no_wrap=True)
    not_run = [c for c in ("skipped", "cancelled") if any(getattr(t, c) for t in progress.variants)]
    for column in ("variant", "done", "failed", *not_run, "score ± CI"):
        table.add_column(column, no_wrap=True)
    for column in ("tokens", "cost $", "latency s", "tx"):
        table.add_column(column, justify="right", no_wrap=True)
    for t in progress.variants:
        ran = max(1, t.done + t.failed)
        tx, _ = flows.get(t.key, (0, 0))
        table.add_row(
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
        )
    return table


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


def _estimate(e: Estimate | None, signed: bool = False) -> str:
    if e is None:
        return "-"
    sign = "+" if signed else ""
    if e.low is None or e.high is None:
        return f"{e.mean:{sign}.2f}"
    return f"{e.mean:{sign}.2f} [{e.low:.2f}, {e.high:.2f}]"


def _p(value: float | None) -> str:
    return "-" if value is None else ("<0.001" if value < 0.001 else f"{value:.3f}")


def comparison_view(comparison: VariantComparison) -> Group:
    """The variants side by side, in two tables (the metric, then what it cost): the best
    marked, differences from the baseline with their corrected p-values, and those that
    are not significant said to be so."""
    teams = len({v.team for v in comparison.variants}) > 1
    scores = _table(
        f"Comparison on {comparison.metric}, 95% intervals, against "
        f"{comparison.baseline or 'no baseline'}"
    )
    for column in ("variant", "ok", f"{comparison.metric} [CI]", "difference [CI]"):
        scores.add_column(column, no_wrap=True)
    scores.add_column("p Holm", justify="right", no_wrap=True)
    scores.add_column("d", justify="right", no_wrap=True)
    costs = _table("Per arm: passed, spent and took; all arms: rewards, transfers, net flow")
    costs.add_column("variant", no_wrap=True)
    for column in ("pass", "tokens", "cost $", "latency s", "reward", "tx", "net flow"):
        costs.add_column(column, justify="right", no_wrap=True)
    for v in comparison.variants:
        name = v.key if teams else v.variant
        marks = ("★ " if v.key == comparison.best else "") + (
            "◆ " if v.key in comparison.pareto else ""
        )
        versus, p, effect = "baseline" if v.key == comparison.baseline else "-", "-", "-"
        style = ""
        if v.versus is not None:
            versus = _estimate(v.versus.difference, signed=True)
            if not v.versus.paired:
                versus += " (u)"
            p = _p(v.versus.p_holm)
            if not v.versus.significant:
                p += " n.s.*" if v.versus.underpowered else " n.s."
                style = "dim"
            if v.versus.effect_size is not None:
                effect = f"{v.versus.effect_size:+.2f}"
        counts = str(v.done) + "".join(
            f" {n} {what}"
            for n, what in (
                (v.failed, "failed"),
                (v.skipped, "skipped"),
                (v.cancelled, "cancelled"),
            )
            if n
        )
        scores.add_row(
            marks + name,
            counts,
            _estimate(v.metric),
            Text(versus, style=style),
            Text(p, style=style),
            effect,
        )
        costs.add_row(
            name,
            f"{v.success_rate:.0%}",
            f"{v.tokens:.0f}",
            f"{v.cost_usd:.4f}",
            f"{v.latency_s:.2f}",
            str(v.reward),
            str(v.transactions),
            str(v.net_flow),
        )
    legend = (
        "★ best mean · ◆ on the cost/score Pareto front · difference: variant - baseline"
        " (u: unpaired) · n.s.: not significant (Holm p >= 0.05), *: too few pairs to be"
        " · d: effect size"
    )
    lines = [Text(legend, style="dim")]
    lines += [Text(f"note: {n}", style="dim") for n in comparison.notes]
    return Group(scores, *lines, costs)


def arms_table(title: str, records: Sequence[ArmRecord]) -> Table:
    table = _table(title)
    for column in ("arm", "status", "score", "steps", "tokens", "cost $", "latency s", "tx"):
        table.add_column(column, no_wrap=column in ("arm", "status"))
    table.add_column("error")
    for r in records:
        table.add_row(
            r.key,
            r.status,
            "-" if r.score is None else f"{r.score:.2f}",
            str(r.steps),
            str(r.tokens),
            f"{r.cost_usd:.4f}",
            f"{r.latency_s:.2f}",
            str(r.transactions),
            r.error or "",
        )
    return table


def export_row(record: ArmRecord) -> dict[str, Any]:
    data = record.model_dump(mode="json")
    return {name: data[name] for name in EXPORT_FIELDS}
