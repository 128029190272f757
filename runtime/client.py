"""Connecting to Temporal: the embedded dev server by default, or TEMPORAL_ADDRESS."""

from __future__ import annotations

import asyncio

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from runtime.errors import TemporalUnavailable
from runtime.settings import Settings


def temporal_address(settings: Settings, *, start_embedded: bool = True) -> str:
    """The address to use; with no TEMPORAL_ADDRESS this starts the dev server if needed."""
    if settings.temporal.address:
        return settings.temporal.address
    from runtime.temporal_server import DevServer

    server = DevServer(settings)
    if start_embedded:
        record, _ = server.start()
        return record.address
    return server.config.address


async def connect(settings: Settings, *, start_embedded: bool = True) -> Client:
    address = temporal_address(settings, start_embedded=start_embedded)
    try:
        return await asyncio.wait_for(
            Client.connect(
                address,
                namespace=settings.temporal.namespace,
                data_converter=pydantic_data_converter,
            ),
            timeout=settings.temporal.connect_timeout_s,
        )
    except (TimeoutError, RuntimeError, OSError) as exc:
        raise TemporalUnavailable(
            f"cannot reach Temporal at {address} (namespace {settings.temporal.namespace})"
        ) from exc
