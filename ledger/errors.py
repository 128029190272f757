"""What can go wrong with a ledger command.

Business errors (the command is wrong and retrying cannot help) and `LedgerStorageError`
(the ledger's file is missing or damaged: only a person can fix it) are non-retryable in
Temporal; `LedgerUnavailable` (the ledger could not be reached or answered) is retryable.
"""

from __future__ import annotations

from p2engine.contract.errors import P2eError


class LedgerError(P2eError):
    """Base of every ledger error; `retryable` tells activities how to fail."""

    retryable = False


class BusinessError(LedgerError):
    """The command broke a ledger rule; it writes nothing and retrying gives the same."""


class InvalidAmount(BusinessError):
    """Not a positive amount with at most 2 decimal places within the per-transfer cap."""


class InvalidTransfer(BusinessError):
    """A transfer that no amount could make valid (a wallet paying itself)."""


class InsufficientFunds(BusinessError):
    """The payer's balance is below the amount."""


class UnknownWallet(BusinessError):
    """No wallet for this agent; only `p2e ledger init` opens wallets."""


def no_wallet(agent: str) -> UnknownWallet:
    """The error for a name without a wallet: `p2e ledger init` opens one for every agent of
    agents.yml (and the treasury), so a name that is none of those never gets one."""
    return UnknownWallet(
        f"no wallet for {agent}: wallets belong to the agents of agents.yml and the treasury, "
        "opened by `p2e ledger init` (again after adding an agent)"
    )


class Unauthorized(BusinessError):
    """The caller may not act for this wallet (or the ledger refused its credentials)."""


class DuplicateTransfer(BusinessError):
    """The transfer id was already used with different details."""


class LedgerStorageError(LedgerError):
    """No ledger file, or one that is empty, unreadable or not a p2e ledger: a retry meets the
    same file, so it is not retried; `p2e ledger init` or a backup is the way out."""


class LedgerUnavailable(LedgerError):
    """The ledger could not be reached or did not answer in time; retry with the same id."""

    retryable = True
