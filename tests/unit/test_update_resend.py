"""An update that a failed workflow task aborted is sent again; any other refusal is not."""

from __future__ import annotations

import pytest
from google.protobuf.any_pb2 import Any as AnyDetail
from temporalio.api.common.v1 import GrpcStatus
from temporalio.api.errordetails.v1 import WorkflowNotReadyFailure
from temporalio.service import RPCError, RPCStatusCode

from p2engine.runtime import client
from p2engine.runtime.client import UPDATE_SENDS, send_update


def refusal(aborted: bool) -> RPCError:
    details = []
    if aborted:
        detail = AnyDetail()
        detail.Pack(WorkflowNotReadyFailure())
        details.append(detail)
    status = GrpcStatus(code=RPCStatusCode.FAILED_PRECONDITION, message="no", details=details)
    return RPCError("no", RPCStatusCode.FAILED_PRECONDITION, status.SerializeToString())


@pytest.fixture(autouse=True)
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client, "UPDATE_RESEND_PAUSE_S", 0.0)


async def test_an_aborted_update_is_sent_again_until_it_is_applied() -> None:
    sent: list[int] = []

    async def send() -> str:
        sent.append(1)
        if len(sent) < 3:
            raise refusal(aborted=True)
        return "applied"

    assert await send_update(send) == "applied"
    assert len(sent) == 3


async def test_another_refusal_is_raised_at_once() -> None:
    sent: list[int] = []

    async def send() -> str:
        sent.append(1)
        raise refusal(aborted=False)

    with pytest.raises(RPCError):
        await send_update(send)
    assert len(sent) == 1


async def test_an_update_aborted_every_time_fails_after_the_last_send() -> None:
    sent: list[int] = []

    async def send() -> str:
        sent.append(1)
        raise refusal(aborted=True)

    with pytest.raises(RPCError):
        await send_update(send)
    assert len(sent) == UPDATE_SENDS
