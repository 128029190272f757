"""Evaluators are registered by decorator, as tools are; `p2e eval list` shows them.

An evaluator scores one target (a model step's output, a tool result or a final answer)
in 0..1. Built-in ones live in this package, evaluators configured in config/evals.yml are
registered from it at load (evals/config.py), and third-party packages add theirs through
the `p2engine.evaluators` entry-point group: each entry point names a module, importing it
runs its `@evaluator` decorators.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from p2engine.contract.errors import ConfigError
from p2engine.contract.evals import Score, Trigger
from p2engine.contract.plugins import load_entry_points
from p2engine.contract.states import State
from p2engine.contract.usage import Usage

ENTRY_POINT_GROUP = "p2engine.evaluators"
EVALUATOR_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")

Source = Literal["built-in", "config", "plugin"]
T = TypeVar("T")


class EvaluationError(Exception):
    """An evaluator could not score its target (a judge's unusable answer, a bad rubric):
    recorded as the evaluation's error, never a failed conversation."""


class UnknownEvaluator(ConfigError):
    """An evaluator id nobody registered; names the known ones."""


# (model, messages) -> the reply's text: how a judge reaches a model without litellm here.
Complete = Callable[[str, list[dict[str, str]]], Awaitable[str]]


@dataclass(frozen=True)
class EvalTarget:
    """What an evaluator sees of the node it scores."""

    kind: State
    text: str
    question: str = ""  # the user message the conversation is answering
    agent_id: str = ""
    step: int = 0
    tool_name: str | None = None
    tool_status: str | None = None  # tool results: ok, error, skipped
    usage: Usage = field(default_factory=Usage)  # the conversation's so far
    complete: Complete | None = None  # the worker's model call, for judges


EvalFn = Callable[[EvalTarget], Score | Awaitable[Score]]


@dataclass(frozen=True)
class PairTarget:
    """What a pairwise evaluator sees: two answers to one question, in the order shown."""

    question: str
    first: str
    second: str
    complete: Complete | None = None


# -> the preference for `first` (contract/evals.py says how it is kept).
PairFn = Callable[[PairTarget], Score | Awaitable[Score]]


@dataclass(frozen=True)
class Evaluator:
    id: str
    version: str
    description: str
    kind: str  # how it scores: a rule's name, composite, llm_judge, or the function's own
    trigger: Trigger
    fn: EvalFn
    source: Source = "built-in"
    # Scores within milliseconds with no model or network call, so the workflow may run it
    # inside its own task (a local activity) instead of scheduling an activity of its own.
    quick: bool = False

    async def score(self, target: EvalTarget) -> Score:
        result = self.fn(target)
        return await result if inspect.isawaitable(result) else result


@dataclass(frozen=True)
class PairEvaluator:
    """Compares two answers to one question (used by `p2e eval compare` and rollouts)."""

    id: str
    version: str
    description: str
    kind: str
    fn: PairFn
    source: Source = "built-in"

    async def compare(self, target: PairTarget) -> Score:
        result = self.fn(target)
        return await result if inspect.isawaitable(result) else result


_EVALUATORS: dict[str, Evaluator] = {}
_PAIRWISE: dict[str, PairEvaluator] = {}  # one namespace of ids with _EVALUATORS


def register(evaluator: Evaluator | PairEvaluator) -> None:
    """Add an evaluator; an id that is malformed or taken is refused."""
    if not EVALUATOR_ID.match(evaluator.id):
        raise ConfigError(
            f"evaluator id {evaluator.id!r}: use letters, digits, '_', '.' and '-' (at most 64)"
        )
    if not evaluator.version.strip():
        raise ConfigError(f"evaluator '{evaluator.id}' needs a version")
    if evaluator.id in _EVALUATORS or evaluator.id in _PAIRWISE:
        raise ConfigError(f"evaluator '{evaluator.id}' is registered twice")
    if isinstance(evaluator, PairEvaluator):
        _PAIRWISE[evaluator.id] = evaluator
    else:
        _EVALUATORS[evaluator.id] = evaluator


def evaluator(
    id: str,
    *,
    version: str,
    description: str,
    trigger: Trigger = "step",
    kind: str | None = None,
    quick: bool = False,
) -> Callable[[EvalFn], EvalFn]:
    """Register a function that scores an `EvalTarget`, plain or async. Bump `version` when
    its scores change meaning, so old and new scores are never averaged together. Declare
    `quick` only for a function that makes no model or network call."""

    def decorate(fn: EvalFn) -> EvalFn:
        kind_ = kind or fn.__name__
        register(Evaluator(id, version, description, kind_, trigger, fn, _source(fn), quick))
        return fn

    return decorate


def pairwise(
    id: str, *, version: str, description: str, kind: str | None = None
) -> Callable[[PairFn], PairFn]:
    """Register a function that compares the two answers of a `PairTarget`, returning the
    preference for the first (1 better, 0 worse, 0.5 a tie)."""

    def decorate(fn: PairFn) -> PairFn:
        register(PairEvaluator(id, version, description, kind or fn.__name__, fn, _source(fn)))
        return fn

    return decorate


def _source(fn: EvalFn | PairFn) -> Source:
    module = getattr(fn, "__module__", "") or ""
    return "built-in" if module.startswith("p2engine.evals.") else "plugin"


def get_evaluator(evaluator_id: str) -> Evaluator:
    """The evaluator that scores one target; a pairwise one is refused by name."""
    if misuse := pairwise_misuse(evaluator_id):
        raise UnknownEvaluator(misuse)
    return _lookup(_EVALUATORS, evaluator_id, "evaluators")


def pairwise_misuse(evaluator_id: str) -> str | None:
    """Why a pairwise evaluator cannot be named where one answer is scored, if it is one."""
    if evaluator_id not in _PAIRWISE:
        return None
    return (
        f"evaluator '{evaluator_id}' compares two answers and cannot score one; "
        "use it with `p2e eval compare`"
    )


def get_pairwise(evaluator_id: str) -> PairEvaluator:
    """The pairwise evaluator; one that scores a single target is refused by name."""
    if evaluator_id in _EVALUATORS:
        raise UnknownEvaluator(
            f"evaluator '{evaluator_id}' scores one answer and cannot compare two; "
            f"pairwise evaluators: {', '.join(sorted(_PAIRWISE)) or 'none'}"
        )
    return _lookup(_PAIRWISE, evaluator_id, "pairwise evaluators")


def _lookup(registry: dict[str, T], evaluator_id: str, what: str) -> T:
    try:
        return registry[evaluator_id]
    except KeyError:
        known = ", ".join(sorted(registry)) or "none"
        message = f"unknown evaluator '{evaluator_id}'; known {what}: {known}"
        raise UnknownEvaluator(message) from None


def registered_evaluators() -> list[Evaluator]:
    return [_EVALUATORS[name] for name in sorted(_EVALUATORS)]


def registered_pairwise() -> list[PairEvaluator]:
    return [_PAIRWISE[name] for name in sorted(_PAIRWISE)]


def unregister(evaluator_id: str) -> None:
    """Forget an evaluator, so a reloaded config can register its own again."""
    _EVALUATORS.pop(evaluator_id, None)
    _PAIRWISE.pop(evaluator_id, None)


_plugins_loaded = False


def load_plugins() -> None:
    """Import every `p2engine.evaluators` entry point once; a broken one is a config error."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    load_entry_points(ENTRY_POINT_GROUP, "evaluator")
    _plugins_loaded = True
