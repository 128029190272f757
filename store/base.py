"""The one interface every artifact store backend implements."""

from __future__ import annotations

from typing import Protocol

from p2engine.contract.models import ContentNode


class ArtifactNotFound(KeyError):
    """No content under this ref (or the ref is not a SHA-256 hex digest)."""


class NotARef(ArtifactNotFound):
    """Text that cannot name an artifact: a ref, or a prefix of one, is 6 to 64 hex digits."""


class ArtifactStore(Protocol):
    """Content-addressed storage: a ref is the SHA-256 of the stored bytes (of a node's
    canonical JSON for nodes), so writing twice is a no-op and a ref always names one
    immutable content. Async, so no backend blocks the worker's event loop; reads of a
    missing ref raise ArtifactNotFound."""

    async def put_bytes(self, data: bytes) -> str: ...

    async def get_bytes(self, ref: str) -> bytes: ...

    async def put_text(self, text: str) -> str: ...

    async def get_text(self, ref: str) -> str: ...

    async def put_node(self, node: ContentNode) -> str:
        """Store a node under `node.ref()`, the hash the workflow computes for it."""
        ...

    async def get_node(self, ref: str) -> ContentNode: ...

    async def chain(self, head: str) -> list[ContentNode]:
        """The nodes from the first message to `head`, oldest first."""
        ...
