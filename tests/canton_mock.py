"""`MockParticipant`: an in-memory stand-in for a Canton 3.4 (or, with `version`, 3.5+)
participant's JSON Ledger API v2, for testing `ledger.canton.CantonLedger` without a ledger.

THIS IS NOT A REAL PARTICIPANT. It was written by hand from the documented request and
response shapes (Canton's JSON Ledger API v2 openapi.yaml and documentation, and the
Daml-LF JSON encoding), not recorded
from a running node; where Canton's exact wording is not documented (error causes, some
optional fields) it makes a plausible choice. What it models:

- Endpoints: GET /v2/state/ledger-end; POST /v2/state/active-contracts (eventFormat with
  TemplateFilter/WildcardFilter per party, activeAtOffset, the 200-element list limit
  `list_limit` as 413); GET/POST /v2/parties; GET/POST /v2/users, GET/POST
  /v2/users/{id}/rights; POST /v2/packages; and only when `version` is 3.5 or later (404
  on 3.4) POST /v2/dars and POST /v2/state/active-contracts-page (request eventFormat,
  activeAtOffset, maxPageSize, pageToken; answer activeContracts, activeAtOffset,
  nextPageToken, the field names of the documented GetActiveContractsPageRequest and
  JsGetActiveContractsPageResponse; pages hold at most `list_limit` entries, a larger
  maxPageSize is clamped, and a page token is opaque and bound to its offset and filter);
  POST /v2/commands/submit-and-wait and /v2/commands/submit-and-wait-for-transaction
  (ACS_DELTA or LEDGER_EFFECTS shape).
- The Daml model of daml/P2Engine/Ledger.daml, run in Python: Wallet and TransferReceipt
  creates with their `ensure`, `Wallet.Transfer` with the same assertions and messages, and
  the built-in `Archive`. A failed assertion or ensure is HTTP 400 JsCantonError with code
  DAML_INTERPRETATION_ERROR and the message in `cause`; a failed command writes nothing.
- Every create gets a fresh contract id, so ids change on every balance change; exercising
  an archived contract is 404 CONTRACT_NOT_FOUND.
- Command deduplication on (userId, set(actAs), commandId) after a success: a resubmission
  is 409 DUPLICATE_COMMAND with `context.existing_submission_id` (no window: forever).
- Values: Decimal only as JSON strings (stricter than Canton, which also takes numbers) and
  returned with 10 places ("74.5000000000"); templates named either `#<package-name>:M:E` or
  `<package-id>:M:E`, and returned in the package-id form, as Canton does.
- Auth: with `jwt_secret`, every request needs `Authorization: Bearer` with an HS256 user
  token (`sub`, scope `daml_ledger_api`, unexpired), else 401. User rights are recorded but
  not enforced.

Test hooks: `requests` records every request (method, path, params, headers, JSON body);
`responses` records every status code; `fail_next`, `raise_next`, `lose_next_response` (the
request is processed, then the transport raises ReadTimeout) and `before_next` inject
faults; `set_balance` tampers with a wallet in place (which no real ledger allows);
`apply_transfer` runs a transfer as another client would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

import httpx

from p2engine.ledger.canton import CantonLedger
from p2engine.ledger.config import CantonSettings

PACKAGE_NAME = "p2engine-ledger"
PACKAGE_ID = hashlib.sha256(b"p2engine-ledger-0.1.0").hexdigest()
MODULE = "P2Engine.Ledger"
NAMESPACE = "1220" + hashlib.sha256(b"mock-participant").hexdigest()
SYNCHRONIZER = f"mock-synchronizer::{NAMESPACE}"
WALLET_FIELDS = {"operator", "owner", "balance", "initial", "openedAt", "paidTransferIds"}
RECEIPT_FIELDS = {
    "operator", "transferId", "payer", "payee", "amount", "reason", "reference", "kind",
    "payerBalance", "payeeBalance",
}  # fmt: skip
_DECIMAL = re.compile(r"-?[0-9]{1,28}(\.[0-9]{1,10})?")
CENT = Decimal("0.01")


class Reply(Exception):
    """An error answer: a JsCantonError body with this status and code."""

    def __init__(self, status: int, code: str, cause: str, **context: str) -> None:
        super().__init__(cause)
        self.status, self.code, self.cause, self.context = status, code, cause, context

    def response(self) -> httpx.Response:
        body: dict[str, Any] = {
            "code": self.code,
            "cause": self.cause,
            "correlationId": None,
            "traceId": None,
            "context": self.context,
            "resources": [],
            "errorCategory": 0,
            "grpcCodeValue": None,
            "retryInfo": None,
            "definiteAnswer": None,
        }
        return httpx.Response(self.status, json=body)


def daml_failure(message: str) -> Reply:
    """A failed `assertMsg` or `ensure`, as the participant reports it."""
    return Reply(
        400,
        "DAML_INTERPRETATION_ERROR",
        f"Interpretation error: Error: Unhandled Daml exception:"
        f' DA.Exception.AssertionFailed:AssertionFailed@3f4deaf1{{ message = "{message}" }}',
    )


def bad_request(cause: str) -> Reply:
    return Reply(400, "COMMAND_PREPROCESSING_FAILED", cause)


@dataclass
class Contract:
    contract_id: str
    entity: str  # "Wallet" or "TransferReceipt"
    args: dict[str, Any]
    signatories: list[str]
    created_at: str
    created_offset: int
    node_id: int
    archived_offset: int | None = None

    def active_at(self, offset: int) -> bool:
        archived = self.archived_offset
        return self.created_offset <= offset and (archived is None or archived > offset)


@dataclass
class Recorded:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Fault:
    path: str
    kind: str  # "status", "raise", "lose" or "before"
    status: int = 0
    code: str = ""
    exc: Exception | None = None
    hook: Callable[[MockParticipant], None] | None = None


def _dec(value: Any, what: str) -> Decimal:
    if not isinstance(value, str) or not _DECIMAL.fullmatch(value):
        raise bad_request(f"{what}: expected a Decimal encoded as a string, got {value!r}")
    return Decimal(value)


def _out(value: Decimal) -> str:
    return f"{value:.10f}"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@dataclass
class _Tx:
    """One command's transaction under construction: nothing touches the ledger until the
    whole command succeeded."""

    mock: MockParticipant
    act_as: list[str]
    update_id: str
    offset: int
    effects: list[dict[str, Any]] = field(default_factory=list)  # LEDGER_EFFECTS, pre-order
    created: dict[str, Contract] = field(default_factory=dict)
    archived: set[str] = field(default_factory=set)

    def lookup(self, cid: Any) -> Contract:
        contract = self.created.get(cid) or self.mock.contracts.get(cid)
        if contract is None or cid in self.archived or contract.archived_offset is not None:
            raise Reply(404, "CONTRACT_NOT_FOUND", f"Contract could not be found with id {cid}")
        return contract

    def authorize(self, parties: list[str]) -> None:
        if not set(parties) <= set(self.act_as):
            raise Reply(400, "DAML_AUTHORIZATION_ERROR", f"missing authorization from {parties}")

    def create(self, entity: str, args: dict[str, Any]) -> str:
        fields = WALLET_FIELDS if entity == "Wallet" else RECEIPT_FIELDS
        if set(args) != fields:
            raise bad_request(f"{entity}: fields {sorted(args)}, expected {sorted(fields)}")
        if entity == "Wallet":
            ok = _dec(args["balance"], "balance") >= 0 and _dec(args["initial"], "initial") >= 0
            ok = ok and args["owner"] != ""
            _paid(args["paidTransferIds"])
            datetime.fromisoformat(str(args["openedAt"]).replace("Z", "+00:00"))
        else:
            ok = _dec(args["amount"], "amount") > 0
            ok = ok and _dec(args["payerBalance"], "payerBalance") >= 0
            ok = ok and _dec(args["payeeBalance"], "payeeBalance") >= 0
        if not ok:
            raise daml_failure(f"Template precondition violated: {MODULE}:{entity}")
        self.authorize([args["operator"]])
        node_id = len(self.effects)
        cid = "00" + hashlib.sha256(f"{self.update_id}|{node_id}".encode()).hexdigest()
        contract = Contract(
            cid, entity, args, [args["operator"]], _now(), self.offset, node_id, None
        )
        self.created[cid] = contract
        self.effects.append({"CreatedEvent": self.mock.created_event(contract)})
        return cid

    def exercise(self, contract: Contract, choice: str, argument: Any) -> Any:
        """Pre-consuming, as Daml's consuming choices are: archived before the body runs."""
        self.authorize(contract.signatories)
        event: dict[str, Any] = {
            "offset": self.offset,
            "nodeId": len(self.effects),
            "contractId": contract.contract_id,
            "templateId": f"{PACKAGE_ID}:{MODULE}:{contract.entity}",
            "interfaceId": None,
            "choice": choice,
            "choiceArgument": argument,
            "actingParties": contract.signatories,
            "consuming": True,
            "witnessParties": contract.signatories,
            "packageName": PACKAGE_NAME,
        }
        self.effects.append({"ExercisedEvent": event})
        self.archived.add(contract.contract_id)
        result = self._transfer(contract, argument) if choice == "Transfer" else {}
        event["lastDescendantNodeId"] = len(self.effects) - 1
        event["exerciseResult"] = result
        return result

    def _transfer(self, wallet: Contract, arg: dict[str, Any]) -> dict[str, str]:
        """`Wallet.Transfer` of daml/P2Engine/Ledger.daml, assertion for assertion."""
        expected = {"payeeCid", "transferId", "amount", "reason", "reference", "kind"}
        if not isinstance(arg, dict) or set(arg) != expected:
            raise bad_request(f"Transfer: expected fields {sorted(expected)}")
        me, amount, transfer_id = wallet.args, _dec(arg["amount"], "amount"), arg["transferId"]
        balance, paid = Decimal(me["balance"]), _paid(me["paidTransferIds"])
        checks = [
            (amount > 0, "p2e: invalid amount: must be greater than 0"),
            (amount == amount.quantize(CENT, ROUND_HALF_EVEN), "p2e: invalid amount: more than 2 decimal places"),  # noqa: E501
            (transfer_id != "", "p2e: invalid transfer: empty transfer id"),
            (arg["kind"] in ("transfer", "reward"), "p2e: invalid transfer: kind must be transfer or reward"),  # noqa: E501
            (arg["payeeCid"] != wallet.contract_id, "p2e: invalid transfer: a wallet cannot pay itself"),  # noqa: E501
            (transfer_id not in paid, "p2e: duplicate transfer: transfer id already used by this payer"),  # noqa: E501
            (balance >= amount, "p2e: insufficient funds"),
        ]  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise daml_failure(message)
        payee = self.lookup(arg["payeeCid"])  # fetch
        if payee.entity != "Wallet":
            raise Reply(400, "WRONGLY_TYPED_CONTRACT", f"{payee.contract_id} is not a Wallet")
        if payee.args["owner"] == me["owner"]:
            raise daml_failure("p2e: invalid transfer: a wallet cannot pay itself")
        if payee.args["operator"] != me["operator"]:
            raise daml_failure("p2e: invalid transfer: payee wallet has another operator")
        self.exercise(payee, "Archive", {})
        payer_balance = balance - amount
        payee_balance = Decimal(payee.args["balance"]) + amount
        new_payer = self.create(
            "Wallet",
            {
                **me,
                "balance": _out(payer_balance),
                "paidTransferIds": {"map": [[t, {}] for t in sorted({*paid, transfer_id})]},
            },
        )
        new_payee = self.create("Wallet", {**payee.args, "balance": _out(payee_balance)})
        receipt = self.create(
            "TransferReceipt",
            {
                "operator": me["operator"],
                "transferId": transfer_id,
                "payer": me["owner"],
                "payee": payee.args["owner"],
                "amount": _out(amount),
                "reason": arg["reason"],
                "reference": arg["reference"],
                "kind": arg["kind"],
                "payerBalance": _out(payer_balance),
                "payeeBalance": _out(payee_balance),
            },
        )
        return {"_1": new_payer, "_2": new_payee, "_3": receipt}


def _paid(value: Any) -> set[str]:
    """A `DA.Set.Set Text`: `{"map": [[key, {}], ...]}` (a GenMap is a list of pairs)."""
    if not isinstance(value, dict) or not isinstance(value.get("map"), list):
        raise bad_request(f"paidTransferIds: expected a DA.Set.Set, got {value!r}")
    return {str(pair[0]) for pair in value["map"]}


class MockParticipant:
    """See the module docstring: a documented-shape stand-in, not a participant."""

    def __init__(
        self, *, version: str = "3.4", jwt_secret: str | None = None, list_limit: int = 200
    ) -> None:
        self.version = tuple(int(part) for part in version.split("."))
        self.jwt_secret = jwt_secret
        self.list_limit = list_limit
        self.transport = httpx.MockTransport(self._handle)
        self.requests: list[Recorded] = []
        self.responses: list[tuple[str, int, str]] = []  # (path, status, code)
        self.parties: dict[str, dict[str, Any]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.rights: dict[str, list[dict[str, Any]]] = {}
        self.uploads: list[tuple[str, bytes]] = []
        self.contracts: dict[str, Contract] = {}
        self.offset = 0
        self.completions: dict[tuple[str, frozenset[str], str], dict[str, Any]] = {}
        self._faults: list[Fault] = []

    # --- test hooks -----------------------------------------------------------------------

    def fail_next(self, path: str, status: int, code: str = "") -> None:
        """Answer the next request to `path` with this error, without processing it."""
        self._faults.append(Fault(path, "status", status=status, code=code))

    def raise_next(self, path: str, exc: Exception) -> None:
        """Raise `exc` from the transport on the next request to `path` (nothing processed)."""
        self._faults.append(Fault(path, "raise", exc=exc))

    def lose_next_response(self, path: str) -> None:
        """Process the next request to `path`, then raise ReadTimeout: the answer is lost."""
        self._faults.append(Fault(path, "lose"))

    def before_next(self, path: str, hook: Callable[[MockParticipant], None]) -> None:
        """Run `hook(self)` just before processing the next request to `path`."""
        self._faults.append(Fault(path, "before", hook=hook))

    def requests_to(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    def add_party(self, hint: str) -> str:
        party = f"{hint}::{NAMESPACE}"
        self.parties[party] = {
            "party": party,
            "isLocal": True,
            "localMetadata": {"resourceVersion": "0", "annotations": {}},
            "identityProviderId": "",
        }
        return party

    def active(self, entity: str | None = None) -> list[Contract]:
        return [
            c
            for c in self.contracts.values()
            if c.archived_offset is None and entity in (None, c.entity)
        ]

    def wallet(self, owner: str) -> Contract:
        return next(c for c in self.active("Wallet") if c.args["owner"] == owner)

    def set_balance(self, owner: str, balance: Decimal) -> None:
        """Tamper with a wallet in place (same contract id): only a test can do this."""
        self.wallet(owner).args["balance"] = _out(balance)

    def apply_transfer(self, payer: str, payee: str, amount: Decimal, transfer_id: str) -> None:
        """Transfer as another client would (a command of its own), changing both ids."""
        wallet = self.wallet(payer)
        argument = {
            "payeeCid": self.wallet(payee).contract_id,
            "transferId": transfer_id,
            "amount": f"{amount:.2f}",
            "reason": "",
            "reference": "",
            "kind": "transfer",
        }
        command = {
            "ExerciseCommand": {
                "templateId": f"#{PACKAGE_NAME}:{MODULE}:Wallet",
                "contractId": wallet.contract_id,
                "choice": "Transfer",
                "choiceArgument": argument,
            }
        }
        self._submit(
            {"commands": [command], "commandId": f"other-{transfer_id}", "userId": "other",
             "actAs": wallet.signatories}
        )  # fmt: skip

    # --- HTTP -----------------------------------------------------------------------------

    def _handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        body: Any = None
        if request.content and "json" in request.headers.get("content-type", ""):
            body = json.loads(request.content)
        self.requests.append(
            Recorded(request.method, path, dict(request.url.params), dict(request.headers), body)
        )
        fault = next((f for f in self._faults if f.path == path), None)
        if fault is not None:
            self._faults.remove(fault)
            if fault.kind == "raise" and fault.exc is not None:
                raise fault.exc
            if fault.kind == "before" and fault.hook is not None:
                fault.hook(self)
        try:
            if fault is not None and fault.kind == "status":
                raise Reply(fault.status, fault.code, f"injected {fault.status} {fault.code}")
            self._authenticate(request)
            response = self._route(request, path, body)
        except Reply as reply:
            response = reply.response()
        except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
            response = httpx.Response(400, text=f"Invalid request body: {exc!r}")
        is_json = response.headers.get("content-type") == "application/json"
        code = response.json().get("code", "") if response.status_code >= 400 and is_json else ""
        self.responses.append((path, response.status_code, code))
        if fault is not None and fault.kind == "lose":
            raise httpx.ReadTimeout("mock: the answer was lost", request=request)
        return response

    def _authenticate(self, request: httpx.Request) -> None:
        if self.jwt_secret is None:
            return
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            raise Reply(401, "UNAUTHENTICATED", "The command is missing a (valid) JWT token")
        try:
            head, payload, signature = header.removeprefix("Bearer ").split(".")
            expected = hmac.new(
                self.jwt_secret.encode(), f"{head}.{payload}".encode(), hashlib.sha256
            ).digest()
            claims = json.loads(_b64decode(payload))
            valid = hmac.compare_digest(expected, _b64decode(signature)) and (
                json.loads(_b64decode(head)).get("alg") == "HS256"
                and "daml_ledger_api" in str(claims.get("scope", "")).split()
                and bool(claims.get("sub"))
                and float(claims.get("exp", 0)) > time.time()
            )
        except ValueError:
            valid = False
        if not valid:
            raise Reply(401, "UNAUTHENTICATED", "The command is missing a (valid) JWT token")

    def _route(self, request: httpx.Request, path: str, body: Any) -> httpx.Response:
        method = request.method
        if (method, path) == ("GET", "/v2/state/ledger-end"):
            return httpx.Response(200, json={"offset": self.offset})
        if (method, path) == ("POST", "/v2/state/active-contracts"):
            return httpx.Response(200, json=self._active_contracts(body))
        paged = ("POST", "/v2/state/active-contracts-page")
        if (method, path) == paged and self.version >= (3, 5):
            return httpx.Response(200, json=self._active_contracts_page(body))
        if path == "/v2/parties":
            if method == "GET":
                details = list(self.parties.values())
                return httpx.Response(200, json={"partyDetails": details, "nextPageToken": ""})
            return httpx.Response(200, json={"partyDetails": self._allocate(body)})
        if path == "/v2/users" and method == "POST":
            return httpx.Response(200, json={"user": self._create_user(body)})
        if match := re.fullmatch(r"/v2/users/([^/]+)(/rights)?", path):
            return self._user(method, match.group(1), bool(match.group(2)), body)
        if method == "POST" and (
            path == "/v2/packages" or (path == "/v2/dars" and self.version >= (3, 5))
        ):
            self.uploads.append((path, request.content))
            return httpx.Response(200, json={})
        if (method, path) == ("POST", "/v2/commands/submit-and-wait"):
            update_id, offset, _ = self._submit(body)
            return httpx.Response(200, json={"updateId": update_id, "completionOffset": offset})
        if (method, path) == ("POST", "/v2/commands/submit-and-wait-for-transaction"):
            return httpx.Response(200, json={"transaction": self._submit_for_transaction(body)})
        return httpx.Response(404, text="The requested resource could not be found.")

    # --- parties and users ----------------------------------------------------------------

    def _allocate(self, body: dict[str, Any]) -> dict[str, Any]:
        hint = str(body.get("partyIdHint") or f"party-{len(self.parties)}")
        if f"{hint}::{NAMESPACE}" in self.parties:
            raise Reply(409, "PARTY_ALREADY_EXISTS", f"Party already exists: {hint}")
        return self.parties[self.add_party(hint)]

    def _create_user(self, body: dict[str, Any]) -> dict[str, Any]:
        user = dict(body["user"])
        if user["id"] in self.users:
            raise Reply(409, "USER_ALREADY_EXISTS", f"User {user['id']} already exists")
        self.users[user["id"]] = user
        self.rights[user["id"]] = list(body.get("rights") or [])
        return user

    def _user(self, method: str, user_id: str, rights: bool, body: Any) -> httpx.Response:
        if user_id not in self.users:
            raise Reply(404, "USER_NOT_FOUND", f"User {user_id} not found")
        if not rights:
            return httpx.Response(200, json={"user": self.users[user_id]})
        if method == "GET":
            return httpx.Response(200, json={"rights": self.rights[user_id]})
        granted = [r for r in body["rights"] if r not in self.rights[user_id]]
        self.rights[user_id].extend(granted)
        return httpx.Response(200, json={"newlyGrantedRights": granted})

    # --- state ----------------------------------------------------------------------------

    def created_event(self, contract: Contract) -> dict[str, Any]:
        return {
            "offset": contract.created_offset,
            "nodeId": contract.node_id,
            "contractId": contract.contract_id,
            "templateId": f"{PACKAGE_ID}:{MODULE}:{contract.entity}",
            "contractKey": None,
            "createArgument": json.loads(json.dumps(contract.args)),
            "createdEventBlob": "",
            "interfaceViews": [],
            "witnessParties": contract.signatories,
            "signatories": contract.signatories,
            "observers": [],
            "createdAt": contract.created_at,
            "packageName": PACKAGE_NAME,
        }

    def _entity(self, template_id: Any) -> str:
        for prefix in (f"#{PACKAGE_NAME}:{MODULE}:", f"{PACKAGE_ID}:{MODULE}:"):
            if isinstance(template_id, str) and template_id.startswith(prefix):
                entity = template_id.removeprefix(prefix)
                if entity in ("Wallet", "TransferReceipt"):
                    return entity
        raise Reply(404, "TEMPLATES_OR_INTERFACES_NOT_FOUND", f"unknown template {template_id}")

    def _wanted(self, filters: dict[str, Any]) -> dict[str, set[str] | None]:
        """party -> the template entities it asks for (None: every template)."""
        wanted: dict[str, set[str] | None] = {}
        for party, spec in filters.items():
            entities: set[str] | None = set()
            for item in spec.get("cumulative") or []:
                kind = item["identifierFilter"]
                if "WildcardFilter" in kind:
                    entities = None
                elif entities is not None:
                    entities.add(self._entity(kind["TemplateFilter"]["value"]["templateId"]))
            wanted[party] = entities
        return wanted

    def _visible(self, wanted: dict[str, set[str] | None], contract: Contract) -> bool:
        return any(
            party in contract.signatories and (entities is None or contract.entity in entities)
            for party, entities in wanted.items()
        )

    def _acs(self, at: int, event_format: dict[str, Any]) -> list[dict[str, Any]]:
        """The snapshot at `at` as JsGetActiveContractsResponse entries, in creation order
        (stable: contracts are never removed from `contracts`, only marked archived)."""
        if at > self.offset:
            raise Reply(400, "OFFSET_AFTER_LEDGER_END", f"offset {at} is after the ledger end")
        wanted = self._wanted(event_format["filtersByParty"])
        return [
            {
                "workflowId": "",
                "contractEntry": {
                    "JsActiveContract": {
                        "createdEvent": self.created_event(c),
                        "synchronizerId": SYNCHRONIZER,
                        "reassignmentCounter": 0,
                    }
                },
            }
            for c in self.contracts.values()
            if c.active_at(at) and self._visible(wanted, c)
        ]

    def _active_contracts(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        found = self._acs(int(body["activeAtOffset"]), body["eventFormat"])
        if len(found) > self.list_limit:
            raise Reply(
                413,
                "HTTP_LIST_MAX_ELEMENTS_LIMIT_EXCEEDED",
                f"more than {self.list_limit} elements: use the paged or websocket endpoint",
            )
        return found

    def _active_contracts_page(self, body: dict[str, Any]) -> dict[str, Any]:
        """One page of the snapshot; the token says where the next page starts and binds it
        to the same offset and filter."""
        offset = body.get("activeAtOffset")
        at = self.offset if offset is None else int(offset)  # optional: the ledger end
        event_format = body["eventFormat"]
        size = int(body.get("maxPageSize") or self.list_limit)
        if size <= 0:
            raise Reply(400, "INVALID_ARGUMENT", f"maxPageSize {size} must be positive")
        size = min(size, self.list_limit)
        binding = hashlib.sha256(
            json.dumps([at, event_format], sort_keys=True).encode()
        ).hexdigest()[:16]
        start = 0
        if token := body.get("pageToken"):
            try:
                bound, position = _b64decode(str(token)).decode().split("|")
                start = int(position)
            except ValueError:
                raise Reply(400, "INVALID_ARGUMENT", f"invalid page token {token!r}") from None
            if bound != binding:
                raise Reply(
                    400,
                    "INVALID_ARGUMENT",
                    "the page token belongs to another activeAtOffset or eventFormat",
                )
        found = self._acs(at, event_format)
        page: dict[str, Any] = {
            "activeContracts": found[start : start + size],
            "activeAtOffset": at,
        }
        if start + size < len(found):
            page["nextPageToken"] = (
                base64.urlsafe_b64encode(f"{binding}|{start + size}".encode()).decode().rstrip("=")
            )
        return page

    # --- commands -------------------------------------------------------------------------

    def _submit(self, commands: dict[str, Any]) -> tuple[str, int, _Tx]:
        command_id = commands["commandId"]
        act_as = list(commands.get("actAs") or [])
        if not command_id or not act_as:
            raise Reply(400, "MISSING_FIELD", "commandId and actAs are required")
        for party in act_as:
            if party not in self.parties:
                raise Reply(400, "INVALID_ARGUMENT", f"unknown party {party}")
        key = (str(commands.get("userId") or ""), frozenset(act_as), str(command_id))
        if (done := self.completions.get(key)) is not None:
            raise Reply(
                409,
                "DUPLICATE_COMMAND",
                "A command with the given command id has already been successfully processed",
                existing_submission_id=done["submissionId"],
                completion_offset=str(done["offset"]),
            )
        offset = self.offset + 1
        update_id = "1220" + hashlib.sha256(f"update|{offset}".encode()).hexdigest()
        tx = _Tx(self, act_as, update_id, offset)
        for command in commands["commands"]:
            if "CreateCommand" in command:
                create = command["CreateCommand"]
                tx.create(self._entity(create["templateId"]), dict(create["createArguments"]))
            elif "ExerciseCommand" in command:
                exercise = command["ExerciseCommand"]
                entity = self._entity(exercise["templateId"])
                contract = tx.lookup(exercise["contractId"])
                if contract.entity != entity or exercise["choice"] not in ("Transfer", "Archive"):
                    raise Reply(400, "INVALID_ARGUMENT", f"no such choice {exercise['choice']}")
                if exercise["choice"] == "Transfer" and entity != "Wallet":
                    raise Reply(400, "INVALID_ARGUMENT", "Transfer is a choice of Wallet")
                tx.exercise(contract, exercise["choice"], exercise["choiceArgument"])
            else:
                raise Reply(400, "INVALID_ARGUMENT", f"unsupported command {sorted(command)}")
        # The command succeeded: commit it.
        self.offset = offset
        for cid in tx.archived:
            if cid in self.contracts:
                self.contracts[cid].archived_offset = offset
        for cid, contract in tx.created.items():
            if cid not in tx.archived:
                self.contracts[cid] = contract
        self.completions[key] = {
            "submissionId": commands.get("submissionId") or "",
            "updateId": update_id,
            "offset": offset,
        }
        return update_id, offset, tx

    def _submit_for_transaction(self, body: dict[str, Any]) -> dict[str, Any]:
        commands = body["commands"]
        transaction_format = body.get("transactionFormat") or {}
        shape = transaction_format.get("transactionShape", "TRANSACTION_SHAPE_ACS_DELTA")
        wanted = self._wanted(transaction_format["eventFormat"]["filtersByParty"])
        update_id, offset, tx = self._submit(commands)
        if shape == "TRANSACTION_SHAPE_LEDGER_EFFECTS":
            events = tx.effects
        else:
            events = [
                {"ArchivedEvent": {
                    "offset": offset, "nodeId": e["ExercisedEvent"]["nodeId"],
                    "contractId": e["ExercisedEvent"]["contractId"],
                    "templateId": e["ExercisedEvent"]["templateId"],
                    "witnessParties": e["ExercisedEvent"]["witnessParties"],
                    "packageName": PACKAGE_NAME,
                }} if "ExercisedEvent" in e else e
                for e in tx.effects
                if "CreatedEvent" not in e or e["CreatedEvent"]["contractId"] not in tx.archived
            ]  # fmt: skip
        events = [e for e in events if self._event_visible(wanted, e)]
        now = _now()
        return {
            "updateId": update_id,
            "commandId": commands["commandId"],
            "workflowId": "",
            "effectiveAt": now,
            "events": events,
            "offset": offset,
            "synchronizerId": SYNCHRONIZER,
            "traceContext": None,
            "recordTime": now,
        }

    def _event_visible(self, wanted: dict[str, set[str] | None], event: dict[str, Any]) -> bool:
        inner = next(iter(event.values()))
        entity = str(inner["templateId"]).rsplit(":", 1)[-1]
        return any(
            party in inner["witnessParties"] and (entities is None or entity in entities)
            for party, entities in wanted.items()
        )


def make_canton_ledger(
    settings: CantonSettings | None = None,
    *,
    max_transfer: Decimal | None = Decimal("1000"),
    jwt_secret: str | None = None,
    version: str = "3.4",
) -> tuple[CantonLedger, MockParticipant]:
    """A CantonLedger wired to a fresh MockParticipant (which checks tokens signed with
    `jwt_secret`, by default the settings' `hmac_secret`)."""
    settings = settings or CantonSettings(url="http://canton.test")
    if settings.url is None:
        settings = settings.model_copy(update={"url": "http://canton.test"})
    mock = MockParticipant(version=version, jwt_secret=jwt_secret or settings.hmac_secret)
    return CantonLedger(settings, max_transfer, transport=mock.transport), mock
