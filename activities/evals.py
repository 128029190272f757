"""The evaluation activity: scores one stored node with the evaluators the workflow names,
stores each verdict in the artifact store beside it, and returns the scores.

An evaluator that cannot score (EvaluationError) is recorded as that evaluation's error, so
a conversation never fails for its evaluation; a store that cannot be read fails the
activity, which Temporal retries.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio import activity

from activities.transcript import node_to_message
from contract.evals import EvalOutcome, Evaluation, Score
from contract.models import ContentNode, EvalRequest
from contract.names import EVALUATE
from contract.states import State
from evals.config import load_evaluators
from evals.registry import EvalTarget, EvaluationError, get_evaluator
from store.base import ArtifactStore


class EvalActivities:
    def __init__(self, store: ArtifactStore, evals_file: Path) -> None:
        self.store = store
        load_evaluators(evals_file)

    @activity.defn(name=EVALUATE)
    async def evaluate(self, request: EvalRequest) -> list[EvalOutcome]:
        # A tool result is scored before the next model step stores it: store it first.
        await asyncio.gather(*(self.store.put_node(node) for node in request.pending))
        target = await self.target(request)
        outcomes = []
        for evaluator_id in request.evaluators:
            evaluator = get_evaluator(evaluator_id)
            score: Score | None = None
            error: str | None = None
            try:
                score = await evaluator.score(target)
            except EvaluationError as exc:
                error = str(exc) or exc.__class__.__name__
            record = Evaluation(
                target=request.target,
                conversation_id=request.conversation_id,
                step=request.step,
                agent_id=request.agent_id,
                evaluator_id=evaluator.id,
                version=evaluator.version,
                score=score,
                error=error,
            )
            ref = await self.store.put_text(record.model_dump_json(exclude_none=True))
            outcomes.append(
                EvalOutcome(
                    evaluator_id=evaluator.id,
                    version=evaluator.version,
                    ref=ref,
                    value=score.value if score else None,
                    error=error,
                )
            )
        return outcomes

    async def target(self, request: EvalRequest) -> EvalTarget:
        """The node as the model saw it (a tool result's content, a step's calls), with the
        user message it answers."""
        node = await self.store.get_node(request.target)
        return EvalTarget(
            kind=node.kind,
            text=await self._text(node),
            question=await self._question(node),
            agent_id=request.agent_id,
            step=request.step,
            tool_name=node.tool_name,
            tool_status=request.tool_status,
            usage=request.usage,
        )

    async def _text(self, node: ContentNode) -> str:
        message = await node_to_message(node, self.store)
        calls = [f"{c.name}({c.arguments})" for c in node.tool_calls]
        return "\n".join([str(message.get("content") or ""), *calls]).strip()

    async def _question(self, node: ContentNode) -> str:
        current: ContentNode | None = node
        while current is not None and current.kind is not State.USER_MESSAGE:
            current = await self.store.get_node(current.parent) if current.parent else None
        return (current.text or "") if current else ""
