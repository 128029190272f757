"""Every id p2e makes or accepts, and the namespaces that keep them apart.

- A name a user chooses (`p2e run --id`, `p2e chat -c`, `p2e ledger transfer --id`) is
  `NAME_PATTERN`: letters, digits, `_`, `.` and `-`. It can never hold `/`, which child
  conversation ids use, nor `:` or `@`, which business keys use.
- A business key that makes a side effect unique is made in the workflow and starts with
  `wf:`; it holds the conversation's first run id, which Temporal chooses, so no user and no
  later run of the same workflow id can repeat it.
- A transfer id a user chooses starts with `user:`, so it never equals a business key.

Pure functions, unit-tested without Temporal.
"""

from __future__ import annotations

import re

NAME_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
NAME_MAX = 100
WORKFLOW_KEY_PREFIX = "wf:"
USER_KEY_PREFIX = "user:"
_NAME = re.compile(NAME_PATTERN)


def name_problem(name: str, what: str = "name") -> str | None:
    """Why `name` may not be chosen by a user, or None if it may."""
    if not name:
        return f"{what} must not be empty"
    if len(name) > NAME_MAX:
        return f"{what} is longer than {NAME_MAX} characters"
    if not _NAME.fullmatch(name):
        return (
            f"{what} {name!r} may hold only letters, digits, '_', '.' and '-' "
            "(and may not start with '.' or '-')"
        )
    return None


def business_key(workflow_id: str, first_run_id: str, step: int, n: int | str) -> str:
    """`wf:<workflow id>/<step>/<n>@<first run id>`: what a side effect (a transfer) is
    unique on. The first run id stays the same across retries, replays and continue-as-new,
    and differs for any other run that ever has this workflow id."""
    return f"{WORKFLOW_KEY_PREFIX}{workflow_id}/{step}/{n}@{first_run_id}"


def user_key(name: str) -> str:
    """The transfer id for a name a user chose: in a namespace no workflow key is in."""
    return f"{USER_KEY_PREFIX}{name}"


def child_workflow_id(parent_id: str, step: int, agent_id: str, taken: set[str]) -> str:
    """`<parent>/d<step>-<agent>`, with `-2`, `-3`... when one step delegates to it twice.
    No user-chosen name holds `/`, so no conversation a user starts can take it first."""
    base = f"{parent_id}/d{step}-{agent_id}"
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    taken.add(candidate)
    return candidate
