"""The interfaces every store backend implements: the artifact store and the tool cache."""

from __future__ import annotations

from typing import Protocol

from p2engine.contract.errors import P2eError
from p2engine.contract.models import ContentNode


class ArtifactNotFound(KeyError):
    """No content under this ref (or the ref is not a SHA-256 hex digest)."""


class NotARef(ArtifactNotFound):
    """Text that cannot name an artifact: a ref, or a prefix of one, is 6 to 64 hex digits."""


class StoreUnavailable(P2eError):
    """The store could not be reached or did not answer; a retry may succeed."""


class ArtifactStore(Protocol):
    """Content-addressed storage: a ref is the SHA-256 of the stored bytes (of a node's
    canonical JSON for nodes), so writing twice is a no-op and a ref always names one
    immutable content. Async, so no backend blocks the worker's event loop; reads of a
    missing ref raise ArtifactNotFound, and a backend that cannot be reached raises
    StoreUnavailable."""

    @property
    def location(self) -> str:
        """Where the content lives, for messages (a directory, or a URL without password)."""
        ...

    async def resolve(self, prefix: str) -> str:
        """The one stored ref that starts with `prefix` (6 to 64 hex digits): NotARef for
        other text, ArtifactNotFound when none or several start so."""
        ...

    async def identity(self) -> str:
        """This store's id, made once when it is first asked for and never changed: a
        conversation carries the id of the store its starter wrote to, and a worker whose
        store has another id refuses its steps (its content would be missing)."""
        ...

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

    async def close(self) -> None: ...


class ToolCache(Protocol):
    """Results of side-effect-free tools by key (tool_cache.cache_key), each kept for its
    tool's `cache_ttl`: a hit costs no tool call. Losing an entry only costs a re-run."""

    async def get(self, key: str) -> str | None:
        """The result's ref, if an unexpired entry holds one."""
        ...

    async def put(self, key: str, result_ref: str, ttl_s: float) -> None: ...

    async def close(self) -> None: ...


def check_prefix(prefix: str) -> None:
    """NotARef unless `prefix` is 6 to 64 lowercase hex digits."""
    if not 6 <= len(prefix) <= 64 or not all(c in "0123456789abcdef" for c in prefix):
        raise NotARef(prefix)
