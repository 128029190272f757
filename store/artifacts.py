"""Content-addressed artifact store: conversation content lives here, refs live in history.

The embedded default is a local directory (`<state dir>/artifacts/ab/abcdef...`); a ref is
the SHA-256 of the bytes, so writing the same content twice (a retried activity) is a no-op
and a ref always names exactly one content.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from contract.models import ContentNode


class ArtifactNotFound(KeyError):
    pass


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, ref: str) -> Path:
        if len(ref) != 64 or not all(c in "0123456789abcdef" for c in ref):
            raise ArtifactNotFound(ref)
        return self.root / ref[:2] / ref[2:]

    def put_bytes(self, data: bytes) -> str:
        ref = hashlib.sha256(data).hexdigest()
        self._write(ref, data)
        return ref

    def _write(self, ref: str, data: bytes) -> None:
        path = self._path(ref)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a crash never leaves a half-written artifact under its ref.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

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
        """Store a node under `node.ref()`, the hash the workflow computes for it."""
        ref = node.ref()
        self._write(ref, node.model_dump_json(exclude_defaults=True).encode())
        return ref

    def get_node(self, ref: str) -> ContentNode:
        return ContentNode.model_validate_json(self.get_bytes(ref))

    def chain(self, head: str) -> list[ContentNode]:
        """The nodes from the first message to `head`, oldest first."""
        nodes: list[ContentNode] = []
        ref: str | None = head
        while ref is not None:
            node = self.get_node(ref)
            nodes.append(node)
            ref = node.parent
        nodes.reverse()
        return nodes
