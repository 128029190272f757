"""The artifact store's content refs, and one canonical form of a tool call's arguments, so
refs made in a workflow name what a worker stores, and the workflow's duplicate-call key and
the worker's tool-cache key agree on when two calls are the same call."""

from __future__ import annotations

import hashlib
import json


def content_ref(data: bytes) -> str:
    """The ref the artifact store keeps `data` under, in every backend: SHA-256 (hex) of the
    bytes. A ref made outside the store (a node's, a config's) is this one of its canonical
    text, so the workflow names content before a worker has stored it."""
    return hashlib.sha256(data).hexdigest()


def canonical_arguments(arguments: str) -> str:
    """The arguments whatever their JSON spacing or key order (empty text is `{}`); text that
    is not JSON stays as written, so a malformed call still names exactly one call."""
    try:
        return json.dumps(json.loads(arguments or "{}"), sort_keys=True, separators=(",", ":"))
    except ValueError:  # JSONDecodeError, or an integer too long to convert
        return arguments


def arguments_digest(arguments: str) -> str:
    """SHA-256 (hex) of the canonical arguments."""
    return hashlib.sha256(canonical_arguments(arguments).encode()).hexdigest()
