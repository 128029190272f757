"""The data converter of every client, worker and replayer: pydantic's JSON, with no field
written that holds its default.

Every payload is kept in history for the life of a conversation and shipped on every task,
and most of a contract model's fields are at their defaults most of the time (no override,
no persona, no child, no usage yet). Leaving those out costs nothing to read back (a field
not written takes its default) and takes about a fifth off a conversation's history. Payloads
written before with every field still read the same, so old histories replay unchanged.
Unions in the contract are told apart by required fields or by shape, never by a field
that holds a default, so no member is read back as another.
"""

from __future__ import annotations

from typing import Any

import temporalio.api.common.v1
from pydantic_core import SchemaSerializer, core_schema
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)


class _CompactJSON(PydanticJSONPlainPayloadConverter):
    _serializer = SchemaSerializer(core_schema.any_schema())

    def to_payload(self, value: Any) -> temporalio.api.common.v1.Payload | None:
        return temporalio.api.common.v1.Payload(
            metadata={"encoding": self.encoding.encode()},
            data=self._serializer.to_json(value, exclude_defaults=True),
        )


class CompactPayloadConverter(CompositePayloadConverter):
    """Temporal's default converters, with the compact pydantic JSON in place of plain JSON."""

    def __init__(self) -> None:
        compact = _CompactJSON()
        super().__init__(
            *(
                compact if isinstance(c, JSONPlainPayloadConverter) else c
                for c in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


DATA_CONVERTER = DataConverter(payload_converter_class=CompactPayloadConverter)
