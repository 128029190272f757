"""Propagation every N model steps, as a learning run drives it: the arms of a generation's
train rollout wait at each barrier (workflows/propagation.py); once every one of them is
at barrier k or has finished, the best of them so far is pushed to the weaker ones that
wait, and all are released.

The decision reads only what the arms recorded when they met barrier k (their score on
the metric and the overrides in force then), or, for an arm that finished before it, its
final score and config. So it is the same however the arms were scheduled, and the same
again when a worker died halfway through a round: the releases are updates with ids of
their barrier, which the conversation takes once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowQueryFailedError
from temporalio.service import RPCError

from p2engine.contract.agent_config import AgentConfig, ConfigPatch
from p2engine.contract.learning import PropagateInput, Push, SiblingArm
from p2engine.contract.models import PUSHED_KNOBS, Release, SyncStatus
from p2engine.contract.names import LEARN_PROPAGATE, RELEASE_UPDATE, SYNC_STATUS_QUERY


@dataclass(frozen=True)
class ArmView:
    """An arm as the run sees it: what it recorded, and whether it has finished."""

    status: SyncStatus
    finished: bool


@dataclass(frozen=True)
class Standing:
    """An arm at barrier k: its score then and the config it ran then."""

    score: float | None
    config: AgentConfig


def next_round(views: Sequence[ArmView]) -> int | None:
    """The barrier every arm is ready to be released from: the lowest one an arm waits at,
    once every other arm has met it too or finished before it."""
    waiting = [v.status.points[-1].round for v in views if _waits(v)]
    if not waiting:
        return None
    number = min(waiting)
    for view in views:
        if not view.finished and not any(p.round == number for p in view.status.points):
            return None
    return number


def standing(arm: SiblingArm, view: ArmView, number: int) -> Standing | None:
    """Where `arm` stood at barrier `number`: as it recorded it there, or, finished before
    it, as it ended; None while it has yet to reach it."""
    point = next((p for p in view.status.points if p.round == number), None)
    if point is not None:
        return Standing(point.score, point.overrides.on(arm.config))
    if view.finished:
        return Standing(view.status.score, view.status.overrides.on(arm.config))
    return None


def releases(
    arms: Sequence[SiblingArm], views: Sequence[ArmView], number: int
) -> list[tuple[SiblingArm, Release]]:
    """The release of every arm waiting at barrier `number`, with the knobs of the best
    config so far that differ from its own when its score is lower (or it has none yet);
    the first of equal bests, in the arms' order. Nothing is pushed before any arm has a
    score."""
    stood = [standing(arm, view, number) for arm, view in zip(arms, views, strict=True)]
    scored = [(s.score, -n, s.config) for n, s in enumerate(stood) if s and s.score is not None]
    best = max(scored, key=lambda t: (t[0], t[1]), default=None)
    out: list[tuple[SiblingArm, Release]] = []
    for arm, view, stand in zip(arms, views, stood, strict=True):
        if not _waits(view) or view.status.points[-1].round != number:
            continue
        assert stand is not None  # it waits at the barrier: it met it
        release = Release(round=number)
        if best is not None and (stand.score is None or stand.score < best[0]):
            changes = _pushed(best[2]).changes(stand.config)
            if changes:
                push = ConfigPatch.model_validate(changes)
                release = Release(round=number, push=push, source=best[2].id)
        out.append((arm, release))
    return out


def pushes(arms: Sequence[SiblingArm], views: Sequence[ArmView]) -> list[Push]:
    """Every push the arms recorded, by barrier then arm."""
    found = [
        Push(
            round=point.round,
            arm=arm.workflow_id,
            source=point.source or "",
            started_as=arm.config.id,
            knobs=sorted(point.pushed.model_dump(exclude_none=True)),
        )
        for arm, view in zip(arms, views, strict=True)
        for point in view.status.points
        if point.pushed is not None
    ]
    return sorted(found, key=lambda p: (p.round, p.arm))


def _waits(view: ArmView) -> bool:
    points = view.status.points
    return not view.finished and bool(points) and not points[-1].released


def _pushed(config: AgentConfig) -> ConfigPatch:
    """The knobs of `config` a push sets (a knob it leaves unset is not pushed)."""
    return ConfigPatch.model_validate(config.model_dump(include=set(PUSHED_KNOBS)))


class PropagationActivities:
    def __init__(self, client: Client) -> None:
        self.client = client

    @activity.defn(name=LEARN_PROPAGATE)
    async def propagate(self, inp: PropagateInput) -> list[Push]:
        """Release the arms barrier by barrier until every one has finished; the pushes,
        as the arms recorded them."""
        while True:
            views = await asyncio.gather(*(self._view(arm) for arm in inp.arms))
            activity.heartbeat()
            read = [v for v in views if v is not None]
            if len(read) < len(views):  # an arm not started yet
                await asyncio.sleep(inp.poll_s)
                continue
            if all(v.finished for v in read):
                return pushes(inp.arms, read)
            number = next_round(read)
            if number is None:
                await asyncio.sleep(inp.poll_s)
                continue
            await asyncio.gather(
                *(self._release(arm, release) for arm, release in releases(inp.arms, read, number))
            )

    async def _view(self, arm: SiblingArm) -> ArmView | None:
        """The arm's record, or None while it cannot be read yet (not started, or its
        first task not done)."""
        handle = self.client.get_workflow_handle(arm.workflow_id)
        try:
            description = await handle.describe()
            status = await handle.query(SYNC_STATUS_QUERY, result_type=SyncStatus)
        except (RPCError, WorkflowQueryFailedError):
            return None
        return ArmView(status, description.status != WorkflowExecutionStatus.RUNNING)

    async def _release(self, arm: SiblingArm, release: Release) -> None:
        handle = self.client.get_workflow_handle(arm.workflow_id)
        await handle.execute_update(RELEASE_UPDATE, release, id=f"release-{release.round}")
