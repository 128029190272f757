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

from activities.heartbeat import heartbeating
from activities.llm import complete_text
from activities.transcript import node_to_message
from contract.evals import EvalOutcome, Evaluation, Score
from contract.models import ContentNode, EvalItem, EvalRequest
from contract.names import EVALUATE
from contract.usage import Usage
from evals.config import load_evaluators
from evals.registry import EvalTarget, EvaluationError, Evaluator, get_evaluator
from store.base import ArtifactStore

QUESTIONS_KEPT = 256


class EvalActivities:
    def __init__(self, store: ArtifactStore, evals_file: Path) -> None:
        self.store = store
        self._questions: dict[str, str] = {}  # ref -> text, oldest first
        load_evaluators(evals_file)

    @activity.defn(name=EVALUATE)
    async def evaluate(self, request: EvalRequest) -> list[list[EvalOutcome]]:
        """The outcomes of each item, in the order of the items."""
        async with heartbeating():  # a judge is a model call, and may take a while
            items = (self._item(request, item) for item in request.items)
            return list(await asyncio.gather(*items))

    async def _item(self, request: EvalRequest, item: EvalItem) -> list[EvalOutcome]:
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

        async def complete(model: str, messages: list[dict[str, str]]) -> str:
            text, usage = await complete_text(model, messages)
            spent.append(usage)
            return text

        metered = replace(target, complete=complete)
        try:
            score, error = await evaluator.score(metered), None
        except EvaluationError as exc:
            score, error = None, str(exc) or exc.__class__.__name__
        return evaluator, score, error, sum(spent, Usage()) if spent else None

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
