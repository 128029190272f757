"""How a failed activity or child reads in the stack and in results."""

from __future__ import annotations


def root_cause(err: BaseException) -> str:
    """The innermost cause's message, on one line and at most 300 characters: what an
    ActivityError or ChildWorkflowError wraps is what went wrong."""
    while err.__cause__ is not None:
        err = err.__cause__
    return " ".join(str(err).split())[:300]
