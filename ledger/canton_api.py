"""The wire level of the Canton backend: JSON Ledger API v2 requests and their bodies, user
tokens, error mapping, and the JSON encoding of the Daml model's values (Decimal and Time as
strings, contracts as Wallet and Receipt), and the balance replay behind `verify`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from p2engine.ledger.config import CantonSettings
from p2engine.ledger.errors import LedgerError, LedgerUnavailable, Unauthorized
from p2engine.ledger.models import CENT, Receipt, VerifyReport, Wallet

MODULE = "P2Engine.Ledger"
LEDGER_EFFECTS = "TRANSACTION_SHAPE_LEDGER_EFFECTS"
WALLET = "Wallet"
RECEIPT = "TransferReceipt"
TOKEN_TTL_S = 3600
ACTIVE_CONTRACTS = "/v2/state/active-contracts"
ACTIVE_CONTRACTS_PAGE = "/v2/state/active-contracts-page"  # Canton 3.5+

# 409s that are an answer, not contention: the caller resolves them.
_ANSWER_409 = {"DUPLICATE_COMMAND", "PARTY_ALREADY_EXISTS", "USER_ALREADY_EXISTS"}
_STALE_CODES = {"CONTRACT_NOT_FOUND", "CONTRACT_NOT_ACTIVE"}
# What a Ledger API command id may hold (Daml-LF LedgerString), and its length limit.
_COMMAND_ID = re.compile(r"[A-Za-z0-9._:#/ -]{1,255}")


class ApiError(LedgerError):
    """A JSON Ledger API error the caller may resolve (a Daml rejection, a duplicate command,
    a missing user); left unresolved it is a non-retryable ledger error."""

    def __init__(self, status: int, code: str, cause: str) -> None:
        super().__init__(f"Canton answered {status} {code}: {cause}".strip())
        self.status, self.code, self.cause = status, code, cause


class StaleContract(LedgerUnavailable):
    """A contract id was already consumed by another command: re-read and resubmit."""


class ListLimitExceeded(LedgerError):
    """HTTP 413: a list answer would hold more than the participant's
    `http-list-max-elements-limit` (default 200) elements; read through the paged endpoint."""


def template_id(package_name: str, entity: str) -> str:
    """The package-name form `#<package-name>:<Module>:<Entity>` (not the package id)."""
    return f"#{package_name}:{MODULE}:{entity}"


def is_template(event_template_id: str, entity: str) -> bool:
    """Events name templates by package id; match on `<Module>:<Entity>` only."""
    return event_template_id.endswith(f":{MODULE}:{entity}")


def command_id(key: str) -> str:
    """The command id for an idempotency key: the key itself when the Ledger API accepts
    it, else a stable digest of it (so a retry still deduplicates)."""
    if _COMMAND_ID.fullmatch(key):
        return key
    return "p2e-" + hashlib.sha256(key.encode()).hexdigest()


def encode_decimal(value: Decimal) -> str:
    return f"{value:.2f}"


def decode_decimal(value: object) -> Decimal:
    """A Daml Decimal (a string such as "74.5000000000") as money with 2 places."""
    try:
        return Decimal(str(value)).quantize(CENT)
    except InvalidOperation:
        raise LedgerError(f"Canton returned {value!r} where a Decimal was expected") from None


def encode_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_FRACTION = re.compile(r"(\.\d{6})\d+")


def decode_time(value: object) -> datetime:
    """An RFC 3339 timestamp (up to nanoseconds, `Z` or an offset) as an aware datetime."""
    try:
        parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", str(value)).replace("Z", "+00:00"))
    except ValueError:
        raise LedgerError(f"Canton returned {value!r} where a timestamp was expected") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_token(
    secret: str, user_id: str, ttl_s: int = TOKEN_TTL_S, now: float | None = None
) -> str:
    """A Canton 3 user token `{"sub", "scope": "daml_ledger_api", "exp"}` signed HS256, as
    a participant with the `unsafe-jwt-hmac-256` auth service accepts (dev only)."""
    issued = int(time.time() if now is None else now)
    header = {"alg": "HS256", "typ": "JWT"}
    payload = {"sub": user_id, "scope": "daml_ledger_api", "iat": issued, "exp": issued + ttl_s}
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, payload)
    )
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(signature)}"


@dataclass(frozen=True)
class Contract:
    """An active contract (or one just created) as a CreatedEvent shows it."""

    contract_id: str
    template_id: str
    args: dict[str, Any]
    created_at: datetime
    offset: int

    @classmethod
    def from_event(cls, event: dict[str, Any], fallback_offset: int = 0) -> Contract:
        return cls(
            contract_id=str(event["contractId"]),
            template_id=str(event["templateId"]),
            args=dict(event.get("createArgument") or {}),
            created_at=decode_time(event.get("createdAt") or encode_time(datetime.now(UTC))),
            offset=int(event.get("offset", fallback_offset)),
        )


def wallet_of(contract: Contract) -> Wallet:
    args = contract.args
    opened = args.get("openedAt")
    return Wallet(
        agent=str(args["owner"]),
        balance=decode_decimal(args["balance"]),
        opened_at=decode_time(opened) if opened else contract.created_at,
    )


def receipt_of(contract: Contract) -> Receipt:
    args = contract.args
    return Receipt(
        transfer_id=str(args["transferId"]),
        kind=args.get("kind", "transfer"),
        payer=str(args["payer"]),
        payee=str(args["payee"]),
        amount=decode_decimal(args["amount"]),
        reason=str(args.get("reason", "")),
        reference=str(args.get("reference", "")),
        at=contract.created_at,
        seq=contract.offset,
        payer_balance=decode_decimal(args["payerBalance"]),
        payee_balance=decode_decimal(args["payeeBalance"]),
    )


def replay(wallets: list[Contract], receipts: list[Receipt]) -> VerifyReport:
    """Replay the receipts in offset order from each wallet's `initial`: every receipt's
    recorded balances and every wallet's current balance must come out the same."""
    rows = len(wallets) + len(receipts)

    def broken(problem: str, seq: int | None = None) -> VerifyReport:
        return VerifyReport(
            ok=False, rows=rows, wallets=len(wallets), problem=problem, first_bad_seq=seq
        )

    balances: dict[str, Decimal] = {}
    for contract in wallets:
        owner = str(contract.args["owner"])
        if owner in balances:
            return broken(f"wallet {owner}: more than one active wallet", contract.offset)
        balances[owner] = decode_decimal(contract.args.get("initial", "0"))
    seen: set[str] = set()
    for r in sorted(receipts, key=lambda r: r.seq):
        if r.transfer_id in seen:
            return broken(f"transfer {r.transfer_id}: more than one receipt", r.seq)
        seen.add(r.transfer_id)
        for agent in (r.payer, r.payee):
            if agent not in balances:
                return broken(f"transfer {r.transfer_id}: no wallet for {agent}", r.seq)
        balances[r.payer] -= r.amount
        balances[r.payee] += r.amount
        if (r.payer_balance, r.payee_balance) != (balances[r.payer], balances[r.payee]):
            return broken(
                f"transfer {r.transfer_id}: recorded balances {r.payer_balance}/"
                f"{r.payee_balance}, replay gives {balances[r.payer]}/{balances[r.payee]}",
                r.seq,
            )
    for contract in wallets:
        wallet = wallet_of(contract)
        if wallet.balance != balances[wallet.agent]:
            return broken(
                f"wallet {wallet.agent}: balance {wallet.balance:.2f}, receipts say"
                f" {balances[wallet.agent]:.2f}",
                contract.offset,
            )
    return VerifyReport(ok=True, rows=rows, wallets=len(wallets))


def js_commands(party: str, user_id: str, command: dict[str, Any], key: str) -> dict[str, Any]:
    """A JsCommands body: the same commandId for every attempt at one change (so the
    participant deduplicates), a fresh submissionId for each."""
    return {
        "commands": [command],
        "commandId": command_id(key),
        "userId": user_id,
        "actAs": [party],
        "readAs": [],
        "submissionId": str(uuid.uuid4()),
    }


def event_format(party: str, template_ids: list[str] | None) -> dict[str, Any]:
    """The party's events of these templates (None: every template)."""
    if template_ids is None:
        kinds: list[dict[str, Any]] = [{"WildcardFilter": {"value": {}}}]
    else:
        kinds = [
            {"TemplateFilter": {"value": {"templateId": t, "includeCreatedEventBlob": False}}}
            for t in template_ids
        ]
    cumulative = [{"identifierFilter": kind} for kind in kinds]
    return {"filtersByParty": {party: {"cumulative": cumulative}}, "verbose": True}


def active_contracts(entries: Any) -> list[Contract]:
    """The contracts of a list of JsGetActiveContractsResponse entries (an active-contracts
    answer, or a page's `activeContracts`); other entries (JsEmpty, incomplete
    (un)assignments) are skipped."""
    found = []
    for entry in entries or []:
        active = (entry.get("contractEntry") or {}).get("JsActiveContract")
        if active:
            found.append(Contract.from_event(active["createdEvent"]))
    return found


# The paged active-contracts read (Canton 3.5+). THE SHAPE IS FROM THE DOCUMENTED API, NOT
# VERIFIED HERE against a running participant: the GetActiveContractsPageRequest and
# JsGetActiveContractsPageResponse schemas of Canton's JSON Ledger API openapi.yaml (a
# 3.6.0-SNAPSHOT copy, and clients generated from it).
# - Request: `eventFormat`; `activeAtOffset` (optional there; sent so that every page
#   reads one snapshot); `maxPageSize` (optional; "the server might reject max_page_size
#   breaching the server-specified limit"); `pageToken` (the previous page's
#   `nextPageToken`; valid only with the same activeAtOffset and eventFormat on the same
#   participant).
# - Response: `activeContracts` (JsGetActiveContractsResponse entries, as in the list
#   endpoint's array), `activeAtOffset`, and `nextPageToken`, absent or empty on the last
#   page.
# That openapi.yaml snapshot lists the endpoint as GET with a JSON body; this client sends
# POST, as the Canton documentation's endpoint table names it (other clients' notes say
# POST is served from a later 3.5 patch on and the GET form is being withdrawn).
PAGE_SIZE = 100


def page_request(
    event_fmt: dict[str, Any], offset: int, token: str | None, page_size: int = PAGE_SIZE
) -> dict[str, Any]:
    """One GetActiveContractsPageRequest body (see the comment above: from the docs)."""
    body: dict[str, Any] = {
        "eventFormat": event_fmt,
        "activeAtOffset": offset,
        "maxPageSize": page_size,
    }
    if token:
        body["pageToken"] = token
    return body


class CantonApi:
    """One participant's JSON Ledger API v2 over httpx, with bearer auth and errors mapped to
    `ledger.errors` (transport trouble, 5xx and 429 are LedgerUnavailable)."""

    def __init__(
        self, settings: CantonSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        if not settings.url:
            raise LedgerError("ledger.canton.url (or P2E_CANTON_URL) is not set")
        self.settings = settings
        self._client = httpx.AsyncClient(
            base_url=settings.url.rstrip("/"),
            timeout=httpx.Timeout(settings.timeout_s),
            transport=transport,
        )
        self._token: tuple[str, float] | None = None

    def _headers(self) -> dict[str, str]:
        token = self.settings.token
        if token is None and self.settings.hmac_secret:
            if self._token is None or self._token[1] - time.time() < 60:
                now = time.time()
                signed = hs256_token(self.settings.hmac_secret, self.settings.user_id, now=now)
                self._token = (signed, now + TOKEN_TTL_S)
            token = self._token[0]
        return {"Authorization": f"Bearer {token}"} if token else {}

    async def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        return await self._send("GET", path, params=params)

    async def post(self, path: str, body: Any = None, params: dict[str, str] | None = None) -> Any:
        return await self._send("POST", path, body=body, params=params)

    async def post_bytes(self, path: str, content: bytes, params: dict[str, str]) -> Any:
        return await self._send("POST", path, content=content, params=params)

    async def _send(
        self,
        method: str,
        path: str,
        body: Any = None,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        headers = self._headers()
        if content is not None:
            headers["Content-Type"] = "application/octet-stream"
        try:
            response = await self._client.request(
                method, path, json=body, content=content, params=params, headers=headers
            )
        except httpx.TransportError as exc:
            kind = type(exc).__name__
            raise LedgerUnavailable(f"Canton at {self.settings.url}: {kind}: {exc}") from exc
        if response.is_success:
            try:
                return response.json() if response.content else {}
            except ValueError:
                raise LedgerError(f"Canton answered {path} with non-JSON") from None
        raise _error(response, self.settings)

    async def close(self) -> None:
        await self._client.aclose()


def _error(response: httpx.Response, settings: CantonSettings) -> LedgerError:
    """Map a JSON Ledger API error (JsCantonError, or plain text for a malformed request)."""
    status, code, cause = response.status_code, "", response.text[:500]
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        code, cause = str(body.get("code") or ""), str(body.get("cause") or cause)
    where = f"Canton {response.request.method} {response.request.url.path}"
    if status in (401, 403):
        return Unauthorized(
            f"{where}: the participant refused user {settings.user_id!r} ({status} {code}): {cause}"
        )
    if status == 404 and code in _STALE_CODES:
        return StaleContract(f"{where}: {code}: {cause}")
    if status == 409 and code not in _ANSWER_409:
        return LedgerUnavailable(f"{where}: {code or status}: {cause}")
    if status == 413:
        return ListLimitExceeded(
            f"{where}: the answer is over the participant's list limit"
            f" (http-list-max-elements-limit): {cause}"
        )
    if status == 429 or status >= 500:
        return LedgerUnavailable(f"{where}: {status} {code}: {cause}")
    return ApiError(status, code, cause)
