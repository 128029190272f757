"""The worker's stores: any backend, remembering what the worker wrote or read lately.

A ref names one immutable content, so a remembered one is never stale. Within a worker, one
activity often reads what another just wrote: a model step reads the tool result that the
tool's activity stored a moment before, a tool answered from its cache reads the result it
stored last time. Each such read would otherwise be a thread hop to the disk or a database
round trip. Likewise a tool answered from the cache finds the entry the worker put when it
last ran the call. Writes always reach the backend: remembering never stands in for storing.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from p2engine.contract.models import ContentNode
from p2engine.store.base import ArtifactStore, ToolCache

REMEMBERED_BYTES = 32 * 1024 * 1024
"""The default budget: the content of a few thousand steps' messages and tool results."""
REMEMBERED_ENTRIES = 4096
"""Tool cache entries: a key and a ref each."""


class RememberingStore:
    """An `ArtifactStore` over `backend` with a byte-bounded LRU of content by ref. Content
    larger than a sixteenth of the budget is not remembered, so one big result never
    empties the rest."""

    def __init__(self, backend: ArtifactStore, budget: int = REMEMBERED_BYTES) -> None:
        self.backend = backend
        self.budget = budget
        self._content: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._identity: str | None = None

    @property
    def location(self) -> str:
        return self.backend.location

    def _remember(self, ref: str, data: bytes) -> None:
        if ref in self._content or len(data) > self.budget // 16:
            return
        self._content[ref] = data
        self._size += len(data)
        while self._size > self.budget:
            _, dropped = self._content.popitem(last=False)
            self._size -= len(dropped)

    def _remembered(self, ref: str) -> bytes | None:
        data = self._content.get(ref)
        if data is not None:
            self._content.move_to_end(ref)
        return data

    async def resolve(self, prefix: str) -> str:
        return await self.backend.resolve(prefix)

    async def identity(self) -> str:
        """Asked once: a store's identity never changes."""
        if self._identity is None:
            self._identity = await self.backend.identity()
        return self._identity

    async def put_bytes(self, data: bytes) -> str:
        ref = await self.backend.put_bytes(data)
        self._remember(ref, data)
        return ref

    async def get_bytes(self, ref: str) -> bytes:
        if (data := self._remembered(ref)) is None:
            data = await self.backend.get_bytes(ref)
            self._remember(ref, data)
        return data

    async def put_text(self, text: str) -> str:
        ref = await self.backend.put_text(text)
        self._remember(ref, text.encode())
        return ref

    async def get_text(self, ref: str) -> str:
        if (data := self._remembered(ref)) is None:
            text = await self.backend.get_text(ref)
            self._remember(ref, text.encode())
            return text
        return data.decode()

    async def put_node(self, node: ContentNode) -> str:
        ref = await self.backend.put_node(node)
        self._remember(ref, node.canonical())
        return ref

    async def get_node(self, ref: str) -> ContentNode:
        if (data := self._remembered(ref)) is None:
            node = await self.backend.get_node(ref)
            self._remember(ref, node.canonical())
            return node
        return ContentNode.model_validate_json(data)

    async def chain(self, head: str) -> list[ContentNode]:
        return await self.backend.chain(head)

    async def close(self) -> None:
        await self.backend.close()


class RememberingToolCache:
    """A `ToolCache` over `backend` that remembers the entries this worker put, each until it
    expires. Entries other workers put are read from the backend; should another worker
    replace one this worker remembers, this worker answers with its own until it expires,
    which is as valid a result of the same call within the tool's TTL."""

    def __init__(self, backend: ToolCache, limit: int = REMEMBERED_ENTRIES) -> None:
        self.backend = backend
        self.limit = limit
        self._entries: OrderedDict[str, tuple[str, float]] = OrderedDict()

    async def get(self, key: str) -> str | None:
        if (entry := self._entries.get(key)) is not None:
            result_ref, expires_at = entry
            if expires_at > time.time():
                self._entries.move_to_end(key)
                return result_ref
            del self._entries[key]
        return await self.backend.get(key)

    async def put(self, key: str, result_ref: str, ttl_s: float) -> None:
        await self.backend.put(key, result_ref, ttl_s)
        self._entries[key] = result_ref, time.time() + ttl_s
        self._entries.move_to_end(key)
        if len(self._entries) > self.limit:
            self._entries.popitem(last=False)

    async def close(self) -> None:
        await self.backend.close()
