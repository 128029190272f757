"""The errors a user can cause or fix; the CLI prints each as one line and exits 2."""

from pydantic import ValidationError


def first_problem(exc: ValidationError) -> str:
    """The first validation error as `'dotted.key': message`, for one-line config errors."""
    first = exc.errors()[0]
    return f"'{'.'.join(str(p) for p in first['loc'])}': {first['msg']}"


class P2eError(Exception):
    """Base for every error that should reach the user as a one-line message."""

    exit_code = 2


class ConfigError(P2eError):
    """A settings or agents file is missing, malformed or names something unknown."""


class UnknownAgent(ConfigError):
    """An agent id that is not in agents.yml; agents are never created on the fly."""


class TemporalUnavailable(P2eError):
    """The Temporal service cannot be reached at the configured address."""


class ProvisioningError(P2eError):
    """The Temporal CLI binary could not be found or built."""


class DevServerError(P2eError):
    """The embedded dev server failed to start, stop or answer."""


class ConversationNotFound(P2eError):
    """No conversation workflow with the given id."""
