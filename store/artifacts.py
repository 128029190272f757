"""The local directory backend of the artifact store, the embedded default.

Content lives in `<state dir>/artifacts/ab/abcdef...`, under the SHA-256 of its bytes.
`ArtifactDirectory` is the blocking file access, for code outside an event loop (the CLI);
`LocalArtifactStore` is the `ArtifactStore` the worker uses, running each file access in a
thread so a slow disk never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from contextlib import suppress
from pathlib import Path

from p2engine.contract.hashing import content_ref
from p2engine.contract.models import ContentNode
from p2engine.store.base import ArtifactNotFound, NotARef, check_prefix

__all__ = ["ArtifactDirectory", "ArtifactNotFound", "LocalArtifactStore", "NotARef"]


_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL


class ArtifactDirectory:
    """Blocking reads and writes of the artifact directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, ref: str) -> Path:
        if len(ref) != 64 or not all(c in "0123456789abcdef" for c in ref):
            raise ArtifactNotFound(ref)
        return self.root / ref[:2] / ref[2:]

    def put_bytes(self, data: bytes) -> str:
        ref = content_ref(data)
        self._write(ref, data)
        return ref

    def _write(self, ref: str, data: bytes) -> None:
        """Store `data` under `ref`, which this process computed (no check of its form). A
        write is a step's hot path: plain `os` calls, and the folder made only when the
        write finds it missing."""
        folder = os.path.join(self.root, ref[:2])
        path = os.path.join(folder, ref[2:])
        if os.path.exists(path):
            return
        # Write then rename, so a crash never leaves a half-written artifact under its ref.
        tmp = os.path.join(folder, f".tmp-{uuid.uuid4().hex}")
        try:
            try:
                fd = os.open(tmp, _NEW_FILE, 0o600)  # owner-only: content may be private
            except FileNotFoundError:
                os.makedirs(folder, exist_ok=True)
                fd = os.open(tmp, _NEW_FILE, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def resolve(self, prefix: str) -> str:
        """The one stored ref that starts with `prefix` (at least 6 hex digits), or
        ArtifactNotFound naming why (none, several, or not a ref)."""
        check_prefix(prefix)
        if len(prefix) == 64:
            if not self._path(prefix).exists():
                raise ArtifactNotFound(prefix)
            return prefix
        folder = self.root / prefix[:2]
        found = sorted(
            prefix[:2] + p.name for p in folder.glob(f"{prefix[2:]}*") if not p.name.startswith(".")
        )
        if len(found) != 1:
            raise ArtifactNotFound(f"{prefix} ({len(found)} refs start so)" if found else prefix)
        return found[0]

    def identity(self) -> str:
        """The id in `<root>/.store-id`, written once (O_EXCL: of two first callers, one
        writes and both read what it wrote)."""
        path = self.root / ".store-id"
        if not path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            with suppress(FileExistsError):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                with os.fdopen(fd, "w") as handle:
                    handle.write(uuid.uuid4().hex)
        for _ in range(100):  # the writer may not have written it yet
            if found := path.read_text().strip():
                return found
            time.sleep(0.01)
        raise ArtifactNotFound(f"{path} is empty")

    def get_bytes(self, ref: str) -> bytes:
        try:
            return self._path(ref).read_bytes()
        except FileNotFoundError:
            raise ArtifactNotFound(ref) from None

    def put_text(self, text: str) -> str:
        return self.put_bytes(text.encode())

    def get_text(self, ref: str) -> str:
        return self.get_bytes(ref).decode()

    def put_node(self, node: ContentNode) -> str:
        return self.put_bytes(node.canonical())

    def get_node(self, ref: str) -> ContentNode:
        return ContentNode.model_validate_json(self.get_bytes(ref))

    def chain(self, head: str) -> list[ContentNode]:
        nodes: list[ContentNode] = []
        ref: str | None = head
        while ref is not None:
            node = self.get_node(ref)
            nodes.append(node)
            ref = node.parent
        nodes.reverse()
        return nodes


class LocalArtifactStore:
    """The `ArtifactStore` over a local directory; a whole chain is read in one thread hop."""

    def __init__(self, root: Path) -> None:
        self.directory = ArtifactDirectory(root)

    @property
    def location(self) -> str:
        return str(self.directory.root)

    async def resolve(self, prefix: str) -> str:
        return await asyncio.to_thread(self.directory.resolve, prefix)

    async def identity(self) -> str:
        return await asyncio.to_thread(self.directory.identity)

    async def put_bytes(self, data: bytes) -> str:
        return await asyncio.to_thread(self.directory.put_bytes, data)

    async def get_bytes(self, ref: str) -> bytes:
        return await asyncio.to_thread(self.directory.get_bytes, ref)

    async def put_text(self, text: str) -> str:
        return await asyncio.to_thread(self.directory.put_text, text)

    async def get_text(self, ref: str) -> str:
        return await asyncio.to_thread(self.directory.get_text, ref)

    async def put_node(self, node: ContentNode) -> str:
        return await asyncio.to_thread(self.directory.put_node, node)

    async def get_node(self, ref: str) -> ContentNode:
        return await asyncio.to_thread(self.directory.get_node, ref)

    async def chain(self, head: str) -> list[ContentNode]:
        return await asyncio.to_thread(self.directory.chain, head)

    async def close(self) -> None:
        """Nothing stays open between calls."""
