"""`p2e learn`: improve an agent's config from its scores with a LearningWorkflow, then
show the run and apply its winner.

`p2e learn FILE.yml` starts a run (the same as `p2e learn start FILE.yml`); `show` prints
the learning curve, the Pareto front, the winner's changes, the held-out comparison and
what it spent; `apply` writes the winner beside agents.yml as a new version.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import yaml
from typer.core import TyperGroup

from p2engine.cli.common import (
    AddressOption,
    JsonOption,
    NamespaceOption,
    RerunSaveOption,
    console,
    note,
    print_json,
    run_async,
    serving,
    settings_for,
    warn_without_worker,
)
from p2engine.cli.tables import Col, print_table
from p2engine.contract.errors import InvalidInput, refuse
from p2engine.contract.ids import name_problem

if TYPE_CHECKING:
    from p2engine.contract.learning import Generation, LearnResult, LearnSpec, LearnState
    from p2engine.contract.rollouts import Estimate
    from p2engine.runtime.learning import LearnClient

FOLLOW_S = 0.5  # how often a running learn is asked for its generations
QUERY_TIMEOUT_S = 5.0  # how long `show` waits for a worker to answer for a running learn


class _FileOrCommand(TyperGroup):
    """`p2e learn FILE` runs `start FILE`; a command name runs that command."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args.insert(0, "start")
        return super().resolve_command(ctx, args)


app = typer.Typer(
    cls=_FileOrCommand,
    help="Learn a better agent config from its scores: p2e learn FILE.yml, show, apply.",
    no_args_is_help=True,
)


@app.command()
def start(
    path: Annotated[Path, typer.Argument(help="A learn file (config/learn/*.yml).")],
    name: Annotated[str | None, typer.Option("--id", help="Run name (learn-NAME).")] = None,
    proposer_model: Annotated[
        str | None, typer.Option("--proposer-model", help="The litellm model that proposes.")
    ] = None,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Print the id, return.")] = False,
    as_json: JsonOption = False,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Run a learning loop: generations of candidates scored as rollouts, then the best
    against the baseline on the held-out tasks."""
    from p2engine.contract.learning import LEARN_PREFIX
    from p2engine.runtime.learning import LearnClient

    settings = settings_for(address, namespace)
    if name is not None:  # before the file is read: nothing is said of a run that won't start
        refuse(name_problem(name.removeprefix(LEARN_PREFIX), "--id"))
    learning = LearnClient(settings)
    prepared = learning.prepare(path, proposer_model=proposer_model)
    tasks = prepared.input.tasks
    note(
        f"{path}: {len(tasks.train)} train, {len(tasks.validation)} validation and "
        f"{len(tasks.test)} test tasks (seed {prepared.file.spec.seed}); "
        f"at most {prepared.file.arms} arms"
    )

    async def go() -> LearnResult | str:
        handle = await learning.start(prepared.input, name=name)
        if detach:
            await warn_without_worker(await learning.temporal(), settings)
            return handle.id
        note(f"{handle.id}: each generation below as it ends; the Web UI shows its rollouts")
        async with serving(await learning.temporal(), settings):
            follower = asyncio.create_task(_follow(learning, handle.id, prepared.file.spec))
            try:
                return await handle.result()
            finally:
                follower.cancel()

    outcome = run_async(go())
    if isinstance(outcome, str):
        console.print(outcome, highlight=False)
        return
    _print(outcome, as_json)


@app.command()
def show(
    learn: Annotated[str, typer.Argument(help="learn-NAME or NAME.")],
    plot: Annotated[
        Path | None, typer.Option("--plot", metavar="FILE.png", help="Draw the curve as a PNG.")
    ] = None,
    rerun_save: RerunSaveOption = None,
    as_json: JsonOption = False,
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """The learning curve, the Pareto front, the winner's changes, the held-out comparison
    and the spend of a finished run; --plot and --rerun-save draw the curve."""
    from p2engine.runtime import learning_curve
    from p2engine.runtime.learning import LearnClient
    from p2engine.runtime.rerun_view import rerun_target

    target = rerun_target(False, rerun_save, False)
    learning = LearnClient(settings_for(address, namespace))
    result = run_async(learning.finished(learn))
    if result is None:  # still running: what it has done so far, if a worker says
        state = run_async(_progress(learning, learn))
        if as_json:
            done = state.model_dump(mode="json") if state else {"generations": None}
            print_json({"running": True, **done})
        elif state is None:
            note(f"{learn} is running, and no worker answers for it now (start `p2e worker`)")
        else:
            note(f"{learn} is running: {len(state.generations)} generations done so far")
            _curve(learn, state.generations)
        return
    _print(result, as_json)
    if plot is not None:
        learning_curve.plot(result, plot)
        note(f"wrote {plot}")
    if target is not None:
        run_async(learning_curve.record(result, target, note))


@app.command()
def apply(
    learn: Annotated[str, typer.Argument(help="learn-NAME or NAME.")],
    address: AddressOption = None,
    namespace: NamespaceOption = None,
) -> None:
    """Write the winner as a new version of its agent beside agents.yml, with its lineage
    (agents.learned/<agent>@<config>.yml); an existing different file is never replaced."""
    from p2engine.agents.registry import AgentRegistry
    from p2engine.runtime.learning import LearnClient

    settings = settings_for(address, namespace)
    result = run_async(LearnClient(settings).finished(learn))
    if result is None:
        raise InvalidInput(f"{learn} is still running; apply its winner once it has ended")
    winner = next(c for c in result.candidates if c.config.id == result.best)
    agent = AgentRegistry.load(settings.agents_file).get(winner.config.agent_id)
    spec = winner.config.on(agent).model_dump(mode="json", exclude_defaults=True)
    lineage = [
        {"config": c.config.id, "parent": c.parent, "changes": c.changes, "why": c.why}
        for c in _ancestry(result, result.best)
    ]
    text = yaml.safe_dump(
        {"learned_from": result.learn_id, "verdict": result.verdict, "lineage": lineage,
         "agent": spec},
        sort_keys=False, allow_unicode=True,
    )  # fmt: skip
    target = settings.agents_file.parent / "agents.learned" / f"{agent.id}@{result.best}.yml"
    if target.exists() and target.read_text() != text:
        raise InvalidInput(f"{target} exists with other content; move it away first")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    console.print(f"wrote {target}", highlight=False)
    if not result.improved:
        note("the winner did not improve significantly on the held-out tasks")


def _ancestry(result: LearnResult, config: str) -> list[Any]:
    by_id = {c.config.id: c for c in result.candidates}
    chain = []
    current: str | None = config
    while current is not None and current in by_id:
        chain.append(by_id[current])
        current = by_id[current].parent
    return list(reversed(chain))


def _estimate(e: Estimate | None) -> str:
    """A mean with its interval, or with its n where it has none."""
    if e is None:
        return "-"
    interval = _interval(e)
    return f"{_mean(e)} {interval if interval != '-' else f'(n={e.n})'}"


async def _progress(learning: LearnClient, learn: str) -> LearnState | None:
    """A running run's state, or None when no worker answers the query in time."""
    from temporalio.service import RPCError

    try:
        return await asyncio.wait_for(learning.progress(learn), timeout=QUERY_TIMEOUT_S)
    except (TimeoutError, RPCError):
        return None


async def _follow(learning: LearnClient, learn_id: str, spec: LearnSpec) -> None:
    """Until cancelled, one line per generation as it ends."""
    from temporalio.service import RPCError

    shown = 0
    while True:
        await asyncio.sleep(FOLLOW_S)
        with contextlib.suppress(RPCError):
            for g in (await learning.progress(learn_id)).generations[shown:]:
                outcome = g.failed or f"{g.proposal}: validation {_estimate(g.validation)}"
                if g.siblings:
                    outcome += f"; {len(g.pushes)} pushes among {len(g.siblings) + 1} configs"
                note(
                    f"  generation {g.number}/{spec.budget.generations}: parent {g.parent} "
                    f"train {_estimate(g.train)}; {outcome}"
                )
                shown = g.number


def _curve(learn_id: str, generations: list[Generation]) -> None:
    rows = [
        [str(g.number), g.parent, _mean(g.train), _interval(g.train), g.proposal or "-",
         _mean(g.validation), _interval(g.validation), g.failed or ""]
        for g in generations
    ]  # fmt: skip
    note("train: the parent on a minibatch of train tasks; valid: its proposal on the "
         "validation tasks; CI: 95% intervals")  # fmt: skip
    print_table(
        console,
        f"{learn_id}: the learning curve",
        [Col("gen", "number"), Col("parent"), Col("train", "number"),
         Col("train CI", "number", drop=2), Col("proposal"), Col("valid", "number"),
         Col("valid CI", "number", drop=1), Col("failed", "text")],
        rows,
    )  # fmt: skip


def _pushes(generations: list[Generation]) -> None:
    """Propagation every N steps: which config went to how many arms, at which barrier."""
    for g in generations:
        groups: dict[tuple[int, str, tuple[str, ...]], int] = {}
        for push in g.pushes:
            key = (push.round, push.source, tuple(push.knobs))
            groups[key] = groups.get(key, 0) + 1
        for (number, source, knobs), arms in groups.items():
            console.print(
                f"generation {g.number}, barrier {number}: {source} pushed to {arms} "
                f"arm{'s' if arms != 1 else ''} ({', '.join(knobs)})",
                highlight=False,
            )
        if g.siblings and not g.pushes:
            console.print(f"generation {g.number}: nothing pushed", highlight=False)


def _mean(e: Estimate | None) -> str:
    return "-" if e is None else f"{e.mean:.3f}"


def _interval(e: Estimate | None) -> str:
    if e is None or e.low is None or e.high is None:
        return "-"
    return f"[{e.low:.3f}, {e.high:.3f}]"


def _print(result: LearnResult, as_json: bool) -> None:
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    _curve(result.learn_id, result.generations)
    _pushes(result.generations)
    console.print(f"pareto front: {', '.join(result.pareto)}", highlight=False)
    winner = next(c for c in result.candidates if c.config.id == result.best)
    console.print(f"best: {result.best} (baseline {result.baseline})", highlight=False)
    for knob, value in winner.changes.items():
        console.print(f"  {knob}: {value}", highlight=False)
    if result.test is not None:
        t = result.test
        interval = (
            "-" if t.ci_low is None or t.ci_high is None else (f"[{t.ci_low:.3f}, {t.ci_high:.3f}]")
        )
        p = "-" if t.p_value is None else f"{t.p_value:.3g}"
        d = "undefined" if t.effect_size is None else f"{t.effect_size:+.2f}"
        console.print(
            f"held out ({t.pairs} pairs, {t.rollout}): baseline {_estimate(t.baseline)}, best "
            f"{_estimate(t.best)}; difference {t.difference:+.3f}, 95% CI {interval}, p {p}, "
            f"effect size {d}",
            highlight=False,
        )
    console.print(result.verdict, highlight=False)
    console.print(
        f"spent: {result.arms} arms, {result.tokens} tokens, ${result.usd:.4f}", highlight=False
    )
