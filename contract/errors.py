"""The errors a user can cause or fix; the CLI prints each as one line and exits 2."""

from pathlib import Path

from pydantic import ValidationError


def first_problem(exc: ValidationError) -> str:
    """The first validation error as `'dotted.key': message`, for one-line config errors."""
    first = exc.errors()[0]
    message = first["msg"].removeprefix("Value error, ")
    return f"'{'.'.join(str(p) for p in first['loc'])}': {message}"


class P2eError(Exception):
    """Base for every error that should reach the user as a one-line message."""

    exit_code = 2


class ConfigError(P2eError):
    """A settings or agents file is missing, malformed or names something unknown."""


class InvalidInput(P2eError):
    """A message, name, model or flag value refused before anything starts or is written."""


def refuse(problem: str | None) -> None:
    """Raise InvalidInput for what a pure check (`name_problem`, `message_problem`, ...)
    found wrong; do nothing when it found nothing."""
    if problem is not None:
        raise InvalidInput(problem)


def read_config_text(path: Path, what: str) -> str:
    """The text of a settings file, or a ConfigError naming the file and what is wrong."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"cannot read {what} {path}: it is a directory") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None


class UnknownAgent(ConfigError):
    """An agent id that is not in agents.yml; agents are never created on the fly."""


class TemporalUnavailable(P2eError):
    """The Temporal service cannot be reached at the configured address."""


class UnknownNamespace(ConfigError):
    """The Temporal service has no namespace of the configured name."""


class ProvisioningError(P2eError):
    """The Temporal CLI binary could not be found or built."""


class DevServerError(P2eError):
    """The embedded dev server failed to start, stop or answer."""


class DatabaseServerError(P2eError):
    """The local PostgreSQL server (`p2e db`) could not be found, made, started or stopped."""


class ConversationNotFound(P2eError):
    """No conversation workflow with the given id."""
