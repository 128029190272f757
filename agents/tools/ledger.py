"""Ledger tools: the acting agent's balance, payments, rewards and history.

The payer is always the acting agent from the workflow (`ToolContext.agent_id`), never a
model argument, and the transfer id is the call's business key from the workflow
(`ToolContext.business_key`), so a retried call pays once. What retrying cannot fix (a
broken ledger rule such as a bad amount, an unknown wallet or an overdraft; no ledger file,
or a damaged one) comes back to the model as a tool error; an unreachable ledger raises,
and Temporal retries the call.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from p2engine.agents.tools.registry import ToolContext, ToolError, tool
from p2engine.ledger.base import Ledger
from p2engine.ledger.errors import LedgerError
from p2engine.ledger.models import PlainAmount, Receipt, TransferKind, money


class NoArgs(BaseModel):
    pass


class TransferArgs(BaseModel):
    to_agent: str = Field(min_length=1, description="the agent to pay")
    amount: PlainAmount = Field(description="more than 0, at most 2 decimal places")
    reason: str = Field(default="", max_length=500, description="why, for the audit trail")


class RewardArgs(BaseModel):
    agent_id: str = Field(min_length=1, description="the agent to reward")
    amount: PlainAmount = Field(description="more than 0, at most 2 decimal places")
    reason: str = Field(default="Good work!", max_length=500)


class HistoryArgs(BaseModel):
    limit: int = Field(default=10, ge=1, le=100)


def _ledger(context: ToolContext) -> Ledger:
    if context.services.ledger is None:
        raise ToolError("no ledger is configured for this worker")
    return context.services.ledger


@contextmanager
def _as_tool_error() -> Iterator[None]:
    """A ledger error that a retry would meet again becomes the model's to read."""
    try:
        yield
    except LedgerError as exc:
        if exc.retryable:
            raise
        raise ToolError(str(exc)) from exc


def _receipt(receipt: Receipt) -> dict[str, Any]:
    return {
        "transfer_id": receipt.transfer_id,
        "kind": receipt.kind,
        "from": receipt.payer,
        "to": receipt.payee,
        "amount": money(receipt.amount),
        "reason": receipt.reason,
        "at": receipt.at.isoformat(),
    }


async def _pay(
    context: ToolContext, payee: str, amount: Decimal, reason: str, kind: TransferKind
) -> dict[str, Any]:
    with _as_tool_error():
        receipt = await _ledger(context).transfer(
            context.business_key,
            context.agent_id,
            payee,
            amount,
            reason=reason,
            reference=context.conversation_id,
            kind=kind,
        )
    result = _receipt(receipt)
    if receipt.payer_balance is not None:
        result["balance"] = money(receipt.payer_balance)
    return result


@tool("check_balance", "Your own wallet's balance.", NoArgs, side_effect_free=True, timeout=15)
async def check_balance(args: NoArgs, context: ToolContext) -> dict[str, str]:
    with _as_tool_error():
        balance = await _ledger(context).balance(context.agent_id)
    return {"agent": context.agent_id, "balance": money(balance)}


@tool(
    "transfer_funds",
    "Pay another agent from your own wallet.",
    TransferArgs,
    timeout=15,
    retry=5,
)
async def transfer_funds(args: TransferArgs, context: ToolContext) -> dict[str, Any]:
    return await _pay(context, args.to_agent, args.amount, args.reason, "transfer")


@tool(
    "reward_agent",
    "Reward another agent for good work, paid from your own wallet.",
    RewardArgs,
    timeout=15,
    retry=5,
)
async def reward_agent(args: RewardArgs, context: ToolContext) -> dict[str, Any]:
    return await _pay(context, args.agent_id, args.amount, f"Reward: {args.reason}", "reward")


@tool(
    "transaction_history",
    "Your latest transfers and rewards, newest first.",
    HistoryArgs,
    side_effect_free=True,
    timeout=15,
)
async def transaction_history(args: HistoryArgs, context: ToolContext) -> dict[str, Any]:
    with _as_tool_error():
        receipts = await _ledger(context).history(context.agent_id, args.limit)
    return {"agent": context.agent_id, "transfers": [_receipt(r) for r in receipts]}
