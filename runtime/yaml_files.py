"""Reading a YAML config file so that every problem is named by file, line and field:
the text (tabs in the indentation, YAML syntax), then the shape (a pydantic model), each
refused in one ConfigError; a rollout file and a learn file are read alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from p2engine.contract.errors import ConfigError, read_config_text

Path_ = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


def read_located(path: Path, kind: str) -> tuple[Any, Located]:
    """The document in `path` and where each of its keys and items starts."""
    text = read_config_text(path, kind)
    for number, line in enumerate(text.splitlines(), start=1):
        if "\t" in line[: len(line) - len(line.lstrip())]:
            raise ConfigError(
                f"{path}:{number}: a tab in the indentation; YAML indents with spaces"
            )
    try:
        lines = _lines(yaml.compose(text))
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or exc.__class__.__name__
        raise ConfigError(f"{path}{where}: not valid YAML ({problem})") from None
    return data, Located(path, lines)


def validated(model: type[M], data: Any, located: Located) -> M:
    """`data` as `model`, or the first problem located; a misspelt key is named before the
    missing one it was likelier meant to be."""
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        errors = exc.errors()
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        message = first["msg"].removeprefix("Value error, ")
        # A union's errors name the member they come from ("list[...]"): not a key.
        field = tuple(p for p in first["loc"] if not (isinstance(p, str) and "[" in p))
        raise located.error(field, message) from None


class Located:
    """Names a place in the file by its line: the deepest part of the path it has."""

    def __init__(self, path: Path, lines: dict[Path_, int]) -> None:
        self.path = path
        self.lines = lines

    def line(self, where: Path_) -> int:
        parts = tuple(int(p) if isinstance(p, str) and p.isdigit() else p for p in where)
        for end in range(len(parts), -1, -1):
            if (line := self.lines.get(parts[:end])) is not None:
                return line
        return 1

    def error(self, where: Path_, problem: str) -> ConfigError:
        dotted = ".".join(str(p) for p in where)
        return ConfigError(f"{self.path}:{self.line(where)}: '{dotted}': {problem}")


def _lines(node: yaml.Node | None, at: Path_ = ()) -> dict[Path_, int]:
    """The line (1-based) where each key or item of the document starts."""
    if node is None:
        return {}
    found = {at: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            found[(*at, key.value)] = key.start_mark.line + 1
            found |= {
                k: v for k, v in _lines(value, (*at, key.value)).items() if k != (*at, key.value)
            }
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found |= _lines(item, (*at, index))
    return found
