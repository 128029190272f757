"""What a user may send as a message or answer: checked by the client before anything starts
or is sent, and again by the workflow's update validators for any other client.

Pure functions, unit-tested without Temporal.
"""

from __future__ import annotations

# Temporal warns above 512 KiB per payload and refuses 2 MiB; a message travels in one.
MESSAGE_MAX_BYTES = 512 * 1024


def message_problem(text: str, what: str = "message") -> str | None:
    """Why `text` may not be sent, or None if it may."""
    if not text.strip():
        return f"the {what} is empty"
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:  # lone surrogates: bytes that were not UTF-8 (argv, stdin)
        return f"the {what} is not valid UTF-8 text"
    if size > MESSAGE_MAX_BYTES:
        return (
            f"the {what} is {size / 1024:.0f} KiB; at most {MESSAGE_MAX_BYTES // 1024} KiB "
            "fits in one Temporal payload"
        )
    return None
