"""Propagation every N model steps, as a conversation takes part in it: when it waits at a
barrier, what it records there, and whether a release may be taken. Pure, tested without
Temporal; the run's side (which sibling is best, what is pushed) is
activities/propagation.py.

A conversation with a `Propagation` waits before each model step that follows N, 2N, ...
model steps, so every sibling is compared at the same point of its own work, and what
it does after a barrier depends only on what happened before it: a rerun with the same
seed propagates the same configs, however the arms were scheduled.
"""

from __future__ import annotations

from p2engine.contract.models import (
    ConversationState,
    Propagation,
    Release,
    SyncPoint,
    SyncStatus,
)
from p2engine.workflows.evaluations import means


def due_round(propagation: Propagation | None, s: ConversationState) -> int | None:
    """The barrier to wait at before the next model step, or None: one after every
    `every` model steps, each met once."""
    if propagation is None or s.model_steps == 0 or s.model_steps % propagation.every:
        return None
    number = s.model_steps // propagation.every
    met = s.sync_points[-1].round if s.sync_points else 0
    return number if number > met else None


def point(number: int, s: ConversationState, metric: str) -> SyncPoint:
    """What the conversation shows its siblings at barrier `number`."""
    return SyncPoint(round=number, score=means(s.stack).get(metric), overrides=s.overrides)


def waiting_at(s: ConversationState) -> int | None:
    """The barrier the conversation waits at, if any."""
    last = s.sync_points[-1] if s.sync_points else None
    return last.round if last is not None and not last.released else None


def release_problem(s: ConversationState, release: Release) -> str | None:
    """A release is taken at the barrier the conversation waits at, and only there."""
    waiting = waiting_at(s)
    if waiting is None:
        return "the conversation waits at no barrier"
    if release.round != waiting:
        return f"the conversation waits at barrier {waiting}, not {release.round}"
    if release.push is not None and release.source is None:
        return "a pushed config names its source"
    return None


def released(s: ConversationState, release: Release) -> None:
    """Mark the barrier passed, with what was pushed there."""
    last = s.sync_points[-1]
    last.released, last.pushed, last.source = True, release.push, release.source


def status(s: ConversationState, propagation: Propagation | None) -> SyncStatus:
    metric = propagation.metric if propagation else None
    score = means(s.stack).get(metric) if metric else None
    return SyncStatus(points=s.sync_points, score=score, overrides=s.overrides)
