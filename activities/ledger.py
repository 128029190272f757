"""Ledger activities: transfer, reward, balance and snapshot, for workflows that move money
themselves (rewards after an evaluation, payments in a rollout).

The transfer id arrives from the workflow (`<workflow id>/<step>/<n>`), never made here, so
every retry names the same transfer. Business errors fail the activity for good;
LedgerUnavailable is retried with backoff.
"""

from __future__ import annotations

from decimal import Decimal

from temporalio import activity
from temporalio.exceptions import ApplicationError

from p2engine.contract.names import LEDGER_BALANCE, LEDGER_REWARD, LEDGER_SNAPSHOT, LEDGER_TRANSFER
from p2engine.ledger.base import Ledger
from p2engine.ledger.errors import LedgerError
from p2engine.ledger.models import LedgerSnapshot, Receipt, TransferRequest


def as_activity_error(exc: LedgerError) -> ApplicationError:
    return ApplicationError(str(exc), type=type(exc).__name__, non_retryable=not exc.retryable)


class LedgerActivities:
    def __init__(self, ledger: Ledger, treasury: str) -> None:
        self.ledger = ledger
        self.treasury = treasury

    async def _transfer(self, request: TransferRequest) -> Receipt:
        try:
            return await self.ledger.transfer(
                request.transfer_id,
                request.payer,
                request.payee,
                request.amount,
                reason=request.reason,
                reference=request.reference,
                kind=request.kind,
            )
        except LedgerError as exc:
            raise as_activity_error(exc) from exc

    @activity.defn(name=LEDGER_TRANSFER)
    async def transfer(self, request: TransferRequest) -> Receipt:
        return await self._transfer(request.model_copy(update={"kind": "transfer"}))

    @activity.defn(name=LEDGER_REWARD)
    async def reward(self, request: TransferRequest) -> Receipt:
        """A reward; an empty payer means the treasury wallet from the settings."""
        payer = request.payer or self.treasury
        return await self._transfer(request.model_copy(update={"kind": "reward", "payer": payer}))

    @activity.defn(name=LEDGER_BALANCE)
    async def balance(self, agent: str) -> Decimal:
        try:
            return await self.ledger.balance(agent)
        except LedgerError as exc:
            raise as_activity_error(exc) from exc

    @activity.defn(name=LEDGER_SNAPSHOT)
    async def snapshot(self) -> LedgerSnapshot:
        try:
            return LedgerSnapshot(
                wallets=await self.ledger.overview(), metrics=await self.ledger.metrics()
            )
        except LedgerError as exc:
            raise as_activity_error(exc) from exc
