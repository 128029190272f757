"""Connecting to Temporal: the embedded dev server by default, or TEMPORAL_ADDRESS."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

from temporalio.api.errordetails.v1 import WorkflowNotReadyFailure
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from p2engine.contract.errors import ConfigError, TemporalUnavailable, UnknownNamespace
from p2engine.runtime.converter import DATA_CONVERTER
from p2engine.runtime.settings import Settings, load_settings

if TYPE_CHECKING:
    from temporalio.plugin import SimplePlugin

T = TypeVar("T")
# How often an update aborted by a failed workflow task is sent again, and the first pause.
UPDATE_SENDS = 5
UPDATE_RESEND_PAUSE_S = 0.2


def temporal_address(settings: Settings, *, start_embedded: bool = True) -> str:
    """The address to use; with no TEMPORAL_ADDRESS this starts the dev server if needed."""
    if settings.temporal.address:
        return settings.temporal.address
    from p2engine.runtime.temporal_server import DevServer

    server = DevServer(settings)
    if start_embedded:
        record, started = server.start()
        if started:  # said, so that a server stopped on purpose is not back unnoticed
            print(
                f"started the Temporal dev server at {record.address} (`p2e server stop` stops it)",
                file=sys.stderr,
                flush=True,
            )
        return record.address
    return server.config.address


def tls_config(settings: Settings) -> TLSConfig | bool:
    """TLS as the settings ask: off for the dev server, on for an API key (Temporal Cloud),
    with the client certificate and key for mTLS. A file that cannot be read is one line."""
    temporal = settings.temporal
    if not temporal.uses_tls:
        return False
    if temporal.tls_cert is None or temporal.tls_key is None:
        return True
    try:
        return TLSConfig(
            client_cert=temporal.tls_cert.read_bytes(),
            client_private_key=temporal.tls_key.read_bytes(),
        )
    except OSError as exc:
        raise ConfigError(f"temporal TLS: cannot read {exc.filename}: {exc.strerror}") from None


async def connect(settings: Settings, *, start_embedded: bool = True) -> Client:
    address = temporal_address(settings, start_embedded=start_embedded)
    namespace = settings.temporal.namespace
    plugins: list[SimplePlugin] = []  # workers made on this client inherit them
    if settings.telemetry.on:  # only then is OpenTelemetry's SDK imported
        from p2engine.runtime.telemetry import tracing_plugins

        plugins = tracing_plugins(settings)
    try:
        client = await asyncio.wait_for(
            Client.connect(
                address,
                namespace=namespace,
                data_converter=DATA_CONVERTER,
                plugins=plugins,
                api_key=key.get_secret_value() if (key := settings.temporal.api_key) else None,
                tls=tls_config(settings),
            ),
            timeout=settings.temporal.connect_timeout_s,
        )
        await _check_namespace(client, namespace, address)
    except (TimeoutError, RuntimeError, OSError) as exc:
        raise TemporalUnavailable(
            f"cannot reach Temporal at {address} (namespace {namespace})"
        ) from exc
    return client


async def _check_namespace(client: Client, namespace: str, address: str) -> None:
    """A missing namespace fails here in one line, not later inside a worker or a start."""
    try:
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=namespace),
            timeout=timedelta(seconds=10),
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise UnknownNamespace(f"no namespace '{namespace}' at {address}") from None
        if exc.status != RPCStatusCode.PERMISSION_DENIED:  # a scoped key may not describe
            raise


class LazyClient:
    """Holds the settings and a Temporal client made on first use, so a command checks its
    input before reaching for Temporal and a typo never starts the dev server."""

    def __init__(self, settings: Settings | None = None, client: Client | None = None) -> None:
        """`settings` default to those of the environment and settings file (`load_settings`)."""
        self.settings = settings if settings is not None else load_settings()
        self._client = client

    async def temporal(self) -> Client:
        if self._client is None:
            self._client = await connect(self.settings)
        return self._client


def _aborted(err: RPCError) -> bool:
    """Whether Temporal aborted an update because the workflow task carrying it failed (a
    completion it refused, e.g. for an event that came in meanwhile, or a worker that died
    mid-task): the update was not applied."""
    descriptor = WorkflowNotReadyFailure.DESCRIPTOR.full_name
    return any(d.type_url.endswith(descriptor) for d in err.grpc_status.details)


async def send_update(send: Callable[[], Awaitable[T]]) -> T:
    """`send()`'s result, sending it again while Temporal answers that a failed workflow task
    aborted it. Safe, since an aborted update left nothing behind; this is what keeps an
    `end` that races a child's completion from being lost."""
    attempt = 1
    while True:
        try:
            return await send()
        except RPCError as err:
            if attempt == UPDATE_SENDS or not _aborted(err):
                raise
        await asyncio.sleep(UPDATE_RESEND_PAUSE_S * attempt)
        attempt += 1
