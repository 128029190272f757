"""The evaluation activity: scores one stored node with the evaluators the workflow names,
stores each verdict in the artifact store beside it, and returns the scores.

An evaluator that cannot score (EvaluationError) is recorded as that evaluation's error, so
a conversation never fails for its evaluation; a store that cannot be read fails the
activity, which Temporal retries.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from p2engine.activities.heartbeat import heartbeating
from p2engine.activities.llm import complete_text
from p2engine.activities.tracing import NO_SPANS, Spans
from p2engine.activities.transcript import node_to_message
from p2engine.contract.evals import (
    Comparison,
    EvalOutcome,
    Evaluation,
    PairOutcome,
    PairRequest,
    Score,
    preference_for_a,
    winner_of,
)
from p2engine.contract.models import ContentNode, EvalItem, EvalRequest
from p2engine.contract.names import COMPARE, EVALUATE
from p2engine.contract.usage import Usage
from p2engine.evals.config import load_evaluators
from p2engine.evals.registry import (
    Complete,
    EvalTarget,
    EvaluationError,
    Evaluator,
    PairTarget,
    UnknownEvaluator,
    get_evaluator,
    get_pairwise,
)
from p2engine.store.base import ArtifactStore

QUESTIONS_KEPT = 256


class EvalActivities:
    def __init__(self, store: ArtifactStore, evals_file: Path, spans: Spans = NO_SPANS) -> None:
        self.store = store
        self.spans = spans
        self._questions: dict[str, str] = {}  # ref -> text, oldest first
        load_evaluators(evals_file)

    @activity.defn(name=EVALUATE)
    async def evaluate(self, request: EvalRequest) -> list[list[EvalOutcome]]:
        """The outcomes of each item, in the order of the items."""
        with heartbeating():  # a judge is a model call, and may take a while
            items = (self._item(request, item) for item in request.items)
            return list(await asyncio.gather(*items))

    async def _item(self, request: EvalRequest, item: EvalItem) -> list[EvalOutcome]:
        with self.spans.evaluation(item.step) as span:
            target = await self.target(request, item)
            verdicts = [await self._verdict(name, target) for name in item.evaluators]
            records = [
                Evaluation(
                    target=item.target,
                    conversation_id=request.conversation_id,
                    step=item.step,
                    agent_id=request.agent_id,
                    evaluator_id=evaluator.id,
                    version=evaluator.version,
                    score=score,
                    error=error,
                    usage=usage,
                )
                for evaluator, score, error, usage in verdicts
            ]
            self.spans.scores(span, records)
        refs = await asyncio.gather(
            *(self.store.put_text(r.model_dump_json(exclude_none=True)) for r in records)
        )
        return [
            EvalOutcome(
                evaluator_id=r.evaluator_id,
                version=r.version,
                ref=ref,
                value=r.score.value if r.score else None,
                error=r.error,
                usage=r.usage,
            )
            for r, ref in zip(records, refs, strict=True)
        ]

    async def _verdict(
        self, evaluator_id: str, target: EvalTarget
    ) -> tuple[Evaluator, Score | None, str | None, Usage | None]:
        """The evaluator's score or error, and what its model calls spent (None for none)."""
        evaluator = get_evaluator(evaluator_id)
        spent: list[Usage] = []
        score: Score | None = None
        error: str | None = None
        try:
            score = await evaluator.score(replace(target, complete=_metered(spent, self.spans)))
        except EvaluationError as exc:
            error = str(exc) or exc.__class__.__name__
        return evaluator, score, error, _total(spent)

    @activity.defn(name=COMPARE)
    async def compare(self, request: PairRequest) -> PairOutcome:
        """A's preference over B by a pairwise evaluator, shown them in the order the
        workflow drew, and the Comparison record stored."""
        try:
            evaluator = get_pairwise(request.evaluator_id)
        except UnknownEvaluator as exc:  # this worker's config lacks it: no retry will help
            raise ApplicationError(str(exc), type="UnknownEvaluator", non_retryable=True) from exc
        a, b, question = await asyncio.gather(
            self.store.get_node(request.a.ref),
            self.store.get_node(request.b.ref),
            self._question(request.question),
        )
        a_text, b_text = await asyncio.gather(self._text(a), self._text(b))
        first, second = (b_text, a_text) if request.swapped else (a_text, b_text)
        spent: list[Usage] = []
        target = PairTarget(question, first, second, _metered(spent, self.spans))
        score: Score | None = None
        error: str | None = None
        with heartbeating():
            try:
                shown = await evaluator.compare(target)
                value = preference_for_a(shown.value, request.swapped)
                score = shown.model_copy(update={"value": value})
            except EvaluationError as exc:
                error = str(exc) or exc.__class__.__name__
        record = Comparison(
            question=request.question,
            a=request.a,
            b=request.b,
            evaluator_id=evaluator.id,
            version=evaluator.version,
            swapped=request.swapped,
            score=score,
            error=error,
            usage=_total(spent),
        )
        ref = await self.store.put_text(record.model_dump_json(exclude_none=True))
        return PairOutcome(
            evaluator_id=evaluator.id,
            version=evaluator.version,
            ref=ref,
            value=score.value if score else None,
            winner=winner_of(score.value) if score else None,
            swapped=request.swapped,
            error=error,
            usage=record.usage,
        )

    async def target(self, request: EvalRequest, item: EvalItem) -> EvalTarget:
        """The node as the model saw it (a tool result's content, a step's calls), with the
        user message it answers. A node the next agent step has yet to store comes with the
        item: the workflow stores it with that step, before the conversation ends."""
        node = item.node or await self.store.get_node(item.target)
        text, question = await asyncio.gather(self._text(node), self._question(item.question))
        return EvalTarget(
            kind=node.kind,
            text=text,
            question=question,
            agent_id=request.agent_id,
            step=item.step,
            tool_name=node.tool_name,
            tool_status=item.tool_status,
            usage=request.usage,
        )

    async def _text(self, node: ContentNode) -> str:
        message = await node_to_message(node, self.store)
        calls = [f"{c.name}({c.arguments})" for c in node.tool_calls]
        return "\n".join([str(message.get("content") or ""), *calls]).strip()

    async def _question(self, ref: str | None) -> str:
        """The question's text; the steps of a turn answer the same one, so it is read once
        (a ref names immutable content, so a kept copy never goes stale)."""
        if ref is None:
            return ""
        if (text := self._questions.get(ref)) is None:
            text = (await self.store.get_node(ref)).text or ""
            if len(self._questions) >= QUESTIONS_KEPT:
                self._questions.pop(next(iter(self._questions)))
            self._questions[ref] = text
        return text


def _metered(spent: list[Usage], spans: Spans) -> Complete:
    """The worker's model call for a judge, noting what each call spends in `spent`; a
    `chat` span of its own when tracing."""

    async def complete(model: str, messages: list[dict[str, str]]) -> str:
        with spans.chat(model, {}) as span:
            text, usage = await complete_text(model, messages)
            if span is not None:
                span.finished(usage, None, list(messages), text, [])
        spent.append(usage)
        return text

    return complete


def _total(spent: list[Usage]) -> Usage | None:
    return sum(spent, Usage()) if spent else None
