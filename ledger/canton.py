"""The Canton backend: agent wallets as Daml contracts (daml/P2Engine/Ledger.daml) on a
Canton 3.4+ participant, over the JSON Ledger API v2.

One operator party signs every Wallet; a transfer exercises `Wallet.Transfer`, which
archives and recreates both wallets and creates a `TransferReceipt`. Idempotency has two
layers: the command id is the transfer id, so the participant's command deduplication
answers a repeat with 409 DUPLICATE_COMMAND (resolved here by reading the receipt), and the
model refuses a transfer id its payer already used. The usual business errors are checked
against a fresh read before submitting; the Daml assertions catch what a stale read misses.

Reads query the active contract set, one template per query (receipts are never archived,
so they pile up; wallets stay few). A list answer is capped at the participant's
`http-list-max-elements-limit` (default 200, else HTTP 413): past it the template is read
through the paged endpoint of Canton 3.5+; Canton 3.4 has none, and the read fails saying so.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from p2engine.ledger.canton_api import (
    ACTIVE_CONTRACTS,
    ACTIVE_CONTRACTS_PAGE,
    LEDGER_EFFECTS,
    RECEIPT,
    WALLET,
    ApiError,
    CantonApi,
    Contract,
    ListLimitExceeded,
    StaleContract,
    active_contracts,
    decode_decimal,
    encode_decimal,
    encode_time,
    event_format,
    is_template,
    js_commands,
    page_request,
    receipt_of,
    replay,
    template_id,
    wallet_of,
)
from p2engine.ledger.config import CantonSettings
from p2engine.ledger.errors import (
    BusinessError,
    DuplicateTransfer,
    InsufficientFunds,
    InvalidAmount,
    InvalidTransfer,
    LedgerError,
    no_wallet,
)
from p2engine.ledger.models import (
    CENT,
    EntryKind,
    JournalEntry,
    LedgerMetrics,
    Receipt,
    TransferKind,
    VerifyReport,
    Wallet,
    checked_transfer,
    parse_balance,
)

STALE_RETRIES = 3
# The assertion messages of daml/P2Engine/Ledger.daml, as they appear in a rejection's cause.
_DUPLICATE_MARK = "p2e: duplicate transfer"
_BUSINESS_ERRORS: tuple[tuple[str, type[BusinessError]], ...] = (
    ("p2e: insufficient funds", InsufficientFunds),
    ("p2e: invalid amount", InvalidAmount),
    ("p2e: invalid transfer", InvalidTransfer),
)


class CantonLedger:
    name = "canton"

    def __init__(
        self,
        settings: CantonSettings,
        max_transfer: Decimal | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.max_transfer = max_transfer
        self.api = CantonApi(settings, transport)
        self._party: str | None = None
        self._setup_lock = asyncio.Lock()
        # Templates whose active contracts were once over the list limit: read paged.
        self._paged: set[str] = set()

    def _tid(self, entity: str) -> str:
        return template_id(self.settings.package_name, entity)

    # --- set-up ---------------------------------------------------------------------------

    async def party(self) -> str:
        """The operator party, allocated on first use, with the user allowed to act as it."""
        async with self._setup_lock:
            if self._party is None:
                party = await self._find_party() or await self._allocate_party()
                await self._ensure_user(party)
                self._party = party
            return self._party

    async def _find_party(self) -> str | None:
        prefix = f"{self.settings.party_hint}::"
        params: dict[str, str] = {}
        for _ in range(100):  # pages
            answer = await self.api.get("/v2/parties", params=params or None)
            for details in answer.get("partyDetails") or []:
                if str(details.get("party", "")).startswith(prefix) and details.get(
                    "isLocal", True
                ):
                    return str(details["party"])
            token = answer.get("nextPageToken")
            if not token:
                return None
            params = {"pageToken": str(token)}
        return None

    async def _allocate_party(self) -> str:
        body = {"partyIdHint": self.settings.party_hint, "identityProviderId": ""}
        try:
            answer = await self.api.post("/v2/parties", body)
        except ApiError as exc:
            # Allocated meanwhile by another process.
            if exc.status == 409 and (found := await self._find_party()):
                return found
            raise
        return str(answer["partyDetails"]["party"])

    async def _ensure_user(self, party: str) -> None:
        user_id = self.settings.user_id
        act_as = {"kind": {"CanActAs": {"value": {"party": party}}}}
        try:
            await self.api.get(f"/v2/users/{user_id}")
        except ApiError as exc:
            if exc.status != 404:
                raise
            user = {
                "id": user_id,
                "primaryParty": party,
                "isDeactivated": False,
                "identityProviderId": "",
            }
            try:
                await self.api.post("/v2/users", {"user": user, "rights": [act_as]})
                return
            except ApiError as exists:
                if exists.status != 409:
                    raise
        rights = await self.api.get(f"/v2/users/{user_id}/rights")
        if act_as not in (rights.get("rights") or []):
            body = {"userId": user_id, "rights": [act_as], "identityProviderId": ""}
            await self.api.post(f"/v2/users/{user_id}/rights", body)

    async def upload_dar(self, dar: bytes) -> None:
        """Upload and vet a DAR: /v2/dars on Canton 3.5+, /v2/packages on 3.4."""
        try:
            await self.api.post_bytes("/v2/dars", dar, {"vetAllPackages": "true"})
        except ApiError as exc:
            if exc.status != 404:
                raise
            await self.api.post_bytes("/v2/packages", dar, {})

    # --- reads ----------------------------------------------------------------------------

    async def _snapshot(self, *entities: str) -> list[list[Contract]]:
        """The active contracts of each template, oldest first, all at one offset (the
        ledger end): one TemplateFilter query per template, so that a template with many
        contracts (receipts) never makes another (wallets) unreadable."""
        party = await self.party()
        end = await self.api.get("/v2/state/ledger-end")
        offset = int(end.get("offset", 0))
        return [await self._active_at(party, offset, entity) for entity in entities]

    async def _active(self, entity: str) -> list[Contract]:
        """The active contracts of this template at the ledger end, oldest first."""
        [found] = await self._snapshot(entity)
        return found

    async def _active_at(self, party: str, offset: int, entity: str) -> list[Contract]:
        """The list endpoint while the answer fits the participant's list limit; past it
        (413) the paged endpoint, used straight away for this template from then on."""
        event_fmt = event_format(party, [self._tid(entity)])
        if entity in self._paged:
            contracts = await self._pages(event_fmt, offset, entity)
        else:
            body = {"eventFormat": event_fmt, "activeAtOffset": offset}
            try:
                contracts = active_contracts(await self.api.post(ACTIVE_CONTRACTS, body))
            except ListLimitExceeded as exc:
                contracts = await self._pages(event_fmt, offset, entity, exc)
                self._paged.add(entity)
        return sorted(contracts, key=lambda c: c.offset)

    async def _pages(
        self,
        event_fmt: dict[str, Any],
        offset: int,
        entity: str,
        over_limit: ListLimitExceeded | None = None,
    ) -> list[Contract]:
        """Every page of POST /v2/state/active-contracts-page (Canton 3.5+) at `offset`.
        The request and response shapes are from the documented API and unverified against
        a participant here (see `page_request` in ledger/canton_api.py)."""
        contracts: list[Contract] = []
        token: str | None = None
        seen: set[str] = set()
        while True:
            try:
                page = await self.api.post(
                    ACTIVE_CONTRACTS_PAGE, page_request(event_fmt, offset, token)
                )
            except ApiError as exc:
                # No such route (a plain-text 404, or 405 for another method): Canton 3.4.
                if exc.status in (404, 405) and not exc.code:
                    raise LedgerError(
                        f"Canton: the active {entity} contracts are over the participant's"
                        f" list limit (413 from {ACTIVE_CONTRACTS}) and it has no paged"
                        f" {ACTIVE_CONTRACTS_PAGE} ({exc.status}): raise"
                        " `http-list-max-elements-limit` on the participant (Canton 3.4)"
                        " or upgrade it to Canton 3.5 or later"
                    ) from over_limit or exc
                raise
            page = page if isinstance(page, dict) else {}
            contracts.extend(active_contracts(page.get("activeContracts")))
            token = page.get("nextPageToken") or None
            if token is None:
                return contracts
            if token in seen:
                raise LedgerError(
                    f"Canton: {ACTIVE_CONTRACTS_PAGE} repeated the page token {token!r}"
                )
            seen.add(token)

    async def _state(self) -> tuple[list[Contract], list[Receipt]]:
        """Wallets and receipts at the same offset, so that `verify` compares one state."""
        wallets, receipts = await self._snapshot(WALLET, RECEIPT)
        return wallets, [receipt_of(c) for c in receipts]

    async def _wallets(self) -> dict[str, Contract]:
        """Each agent's wallet contract (the oldest, should the app ever have made two)."""
        by_owner: dict[str, Contract] = {}
        for contract in await self._active(WALLET):
            by_owner.setdefault(str(contract.args["owner"]), contract)
        return by_owner

    async def balance(self, agent: str) -> Decimal:
        wallet = (await self._wallets()).get(agent)
        if wallet is None:
            raise no_wallet(agent)
        return decode_decimal(wallet.args["balance"])

    async def get_transfer(self, transfer_id: str) -> Receipt | None:
        receipts = [receipt_of(c) for c in await self._active(RECEIPT)]
        return next((r for r in receipts if r.transfer_id == transfer_id), None)

    async def history(self, agent: str, limit: int = 20) -> list[Receipt]:
        wallets, receipts = await self._state()
        if not any(w.args["owner"] == agent for w in wallets):
            raise no_wallet(agent)
        mine = [r for r in receipts if agent in (r.payer, r.payee)]
        return sorted(mine, key=lambda r: r.seq, reverse=True)[:limit]

    async def overview(self) -> list[Wallet]:
        return sorted(
            (wallet_of(c) for c in (await self._wallets()).values()), key=lambda w: w.agent
        )

    async def metrics(self) -> LedgerMetrics:
        wallets, receipts = await self._state()
        return LedgerMetrics(
            wallets=len(wallets),
            supply=sum((decode_decimal(w.args["balance"]) for w in wallets), Decimal("0.00")),
            volume=sum((r.amount for r in receipts), Decimal("0.00")),
            transfers=sum(1 for r in receipts if r.kind == "transfer"),
            rewards=sum(1 for r in receipts if r.kind == "reward"),
        )

    async def audit(
        self, since: datetime | None = None, kind: EntryKind | None = None, limit: int = 100
    ) -> list[JournalEntry]:
        """Openings (from each wallet's `initial` and `openedAt`; seq 0, since Canton keeps no
        offset for a wallet's first contract once it is replaced) and transfers (seq = the
        receipt's offset), oldest first."""
        wallets, receipts = await self._state()
        entries: list[JournalEntry] = []
        for contract in wallets:
            wallet = wallet_of(contract)
            initial = decode_decimal(contract.args.get("initial", "0"))
            entries.append(
                JournalEntry(
                    seq=0, at=wallet.opened_at, kind="open", transfer_id=None, payer=None,
                    payee=wallet.agent, amount=initial,
                )
            )  # fmt: skip
        for r in receipts:
            entries.append(
                JournalEntry(
                    seq=r.seq, at=r.at, kind=r.kind, transfer_id=r.transfer_id, payer=r.payer,
                    payee=r.payee, amount=r.amount, reason=r.reason, reference=r.reference,
                )
            )  # fmt: skip
        since = since.astimezone(UTC) if since is not None else None  # naive: local time
        entries = [
            e
            for e in entries
            if (since is None or e.at >= since) and (kind is None or e.kind == kind)
        ]
        return sorted(entries, key=lambda e: (e.at, e.seq))[:limit]

    async def verify(self) -> VerifyReport:
        """Replay every receipt, in offset order, from the wallets' `initial` balances: each
        receipt's recorded balances and every wallet's current balance must match."""
        return replay(*await self._state())

    # --- commands -------------------------------------------------------------------------

    def _commands(self, party: str, command: dict[str, Any], key: str) -> dict[str, Any]:
        return js_commands(party, self.settings.user_id, command, key)

    async def open_wallet(self, agent: str, initial: Decimal) -> tuple[Wallet, bool]:
        initial = parse_balance(initial)
        party = await self.party()
        existing = (await self._wallets()).get(agent)
        if existing is not None:
            return wallet_of(existing), False
        opened_at = datetime.now(UTC)
        args = {
            "operator": party,
            "owner": agent,
            "balance": encode_decimal(initial),
            "initial": encode_decimal(initial),
            "openedAt": encode_time(opened_at),
            "paidTransferIds": {"map": []},
        }
        create = {"CreateCommand": {"templateId": self._tid(WALLET), "createArguments": args}}
        try:
            await self.api.post(
                "/v2/commands/submit-and-wait", self._commands(party, create, f"open/{agent}")
            )
        except ApiError as exc:
            if exc.code != "DUPLICATE_COMMAND":
                raise
            existing = (await self._wallets()).get(agent)
            if existing is None:
                raise LedgerError(f"wallet {agent} was opened before but is gone") from exc
            return wallet_of(existing), False
        return Wallet(agent=agent, balance=initial.quantize(CENT), opened_at=opened_at), True

    async def transfer(
        self,
        transfer_id: str,
        payer: str,
        payee: str,
        amount: Decimal,
        reason: str = "",
        reference: str = "",
        kind: TransferKind = "transfer",
    ) -> Receipt:
        amount = checked_transfer(transfer_id, payer, payee, amount, self.max_transfer)
        party = await self.party()
        for attempt in range(STALE_RETRIES):
            wallets = await self._wallets()
            refusal = _refusal(wallets, payer, payee, amount)
            if refusal is not None:
                # A repeat of a transfer that already happened is answered, not refused.
                if (existing := await self.get_transfer(transfer_id)) is not None:
                    return existing.answer_repeat(payer, payee, amount, reason)
                raise refusal
            choice = {
                "payeeCid": wallets[payee].contract_id,
                "transferId": transfer_id,
                "amount": encode_decimal(amount),
                "reason": reason,
                "reference": reference,
                "kind": kind,
            }
            exercise = {
                "ExerciseCommand": {
                    "templateId": self._tid(WALLET),
                    "contractId": wallets[payer].contract_id,
                    "choice": "Transfer",
                    "choiceArgument": choice,
                }
            }
            try:
                return await self._submit_transfer(party, exercise, transfer_id)
            except StaleContract:
                if attempt == STALE_RETRIES - 1:
                    raise
            except ApiError as exc:
                if exc.code != "DUPLICATE_COMMAND" and _DUPLICATE_MARK not in exc.cause:
                    raise _business_error(exc) from exc
                existing = await self.get_transfer(transfer_id)
                if existing is None:
                    raise DuplicateTransfer(
                        f"transfer id {transfer_id} was already used by another command"
                    ) from exc
                return existing.answer_repeat(payer, payee, amount, reason)
        raise AssertionError("unreachable")

    async def _submit_transfer(
        self, party: str, exercise: dict[str, Any], transfer_id: str
    ) -> Receipt:
        body = {
            "commands": self._commands(party, exercise, transfer_id),
            "transactionFormat": {
                "eventFormat": event_format(party, None),
                "transactionShape": LEDGER_EFFECTS,
            },
        }
        answer = await self.api.post("/v2/commands/submit-and-wait-for-transaction", body)
        transaction = answer.get("transaction") or {}
        for event in transaction.get("events") or []:
            created = event.get("CreatedEvent")
            if created and is_template(str(created.get("templateId", "")), RECEIPT):
                offset = int(transaction.get("offset", 0))
                return receipt_of(Contract.from_event(created, offset))
        raise LedgerError(f"transfer {transfer_id}: the transaction holds no TransferReceipt")

    async def close(self) -> None:
        await self.api.close()


def _refusal(
    wallets: dict[str, Contract], payer: str, payee: str, amount: Decimal
) -> BusinessError | None:
    """The business error a fresh read already shows, if any."""
    for agent in (payer, payee):
        if agent not in wallets:
            return no_wallet(agent)
    balance = decode_decimal(wallets[payer].args["balance"])
    if balance < amount:
        return InsufficientFunds(f"{payer} has {balance:.2f}, less than {amount:.2f}")
    return None


def _business_error(exc: ApiError) -> LedgerError:
    """A Daml rejection (assert or ensure) as the business error it stands for."""
    for mark, error in _BUSINESS_ERRORS:
        if mark in exc.cause:
            return error(f"Canton refused the transfer: {mark.removeprefix('p2e: ')}")
    return exc
