"""YAML documents checked against a JSON Schema, with errors that name file, line and column.

Shared by the topology and scenario loaders. A document is composed into YAML
nodes (kept for positions), refused if it uses what YAML allows but a data file
must not (aliases, non-string or duplicate keys), then loaded as plain data and
validated. Every error is a `LocatedError` subclass chosen by the caller; no
other exception escapes for any input text.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import jsonschema
    import yaml

MAX_FILE_BYTES = 1_000_000

Path_ = list[str | int]


class LocatedError(ValueError):
    """An error in a data file: `source:line:col: message`, or `source: message`."""

    def __init__(self, source: str, line: int | None, column: int | None, message: str) -> None:
        self.source = source
        self.line = line
        self.column = column
        self.message = message
        where = source if line is None else f"{source}:{line}:{column}"
        super().__init__(f"{where}: {message}")


E = TypeVar("E", bound=LocatedError)


def read_source(path: Path, error: type[E]) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise error(str(path), None, None, f"cannot read file: {exc.strerror}") from exc


def compose(
    text: str | bytes, source: str, error: type[E], empty_message: str
) -> tuple[yaml.Node, Any]:
    """The document's root node and its data; raises `error` for anything unreadable."""
    # imported here: node processes given their address directly never pay for them
    import yaml

    if isinstance(text, bytes):
        if len(text) > MAX_FILE_BYTES:
            raise error(source, None, None, f"file is larger than {MAX_FILE_BYTES} bytes")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise error(source, None, None, f"not UTF-8 text: {exc.reason}") from exc
    if len(text) > MAX_FILE_BYTES:
        raise error(source, None, None, f"file is larger than {MAX_FILE_BYTES} characters")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise error(source, line, column, f"invalid YAML: {exc.problem}") from exc
    except (yaml.YAMLError, RecursionError) as exc:
        raise error(source, None, None, f"invalid YAML: {exc}") from exc
    if node is None:
        raise error(source, 1, 1, empty_message)
    _check_nodes(node, source, error)
    try:
        data = yaml.SafeLoader(text).get_single_data()
    except (yaml.YAMLError, RecursionError, ValueError, TypeError) as exc:
        raise error(source, None, None, f"invalid YAML value: {exc}") from exc
    return node, data


def _check_nodes(root: yaml.Node, source: str, error: type[E]) -> None:
    """Reject what YAML allows but a data file must not contain: aliases (which can
    expand exponentially), non-string mapping keys and duplicate keys."""
    import yaml

    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            raise node_error(node, source, error, "YAML aliases (*name) are not supported here")
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: set[str] = set()
            for key, value in node.value:
                if not isinstance(key, yaml.ScalarNode) or key.tag != "tag:yaml.org,2002:str":
                    raise node_error(key, source, error, "mapping keys must be plain strings")
                if key.value in keys:
                    raise node_error(key, source, error, f"duplicate key {key.value!r}")
                keys.add(key.value)
                stack.extend((key, value))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def node_error(node: yaml.Node, source: str, error: type[E], message: str) -> E:
    mark = node.start_mark
    return error(source, mark.line + 1, mark.column + 1, message)


class Locator:
    """Finds the node of a data path (keys and list indexes) for an error's position;
    a path that leaves the document stops at the deepest node that exists."""

    def __init__(self, root: yaml.Node, source: str, error: type[LocatedError]) -> None:
        self.root = root
        self.source = source
        self.error_type = error

    def node(self, path: Path_) -> yaml.Node:
        import yaml

        node = self.root
        for part in path:
            if isinstance(node, yaml.MappingNode):
                for key, value in node.value:
                    if key.value == part:
                        node = value
                        break
                else:
                    return node
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if part >= len(node.value):
                    return node
                node = node.value[part]
            else:
                return node
        return node

    def key_node(self, path: Path_) -> yaml.Node:
        """The node of the key that ends `path` (for 'unknown key' errors)."""
        import yaml

        parent = self.node(path[:-1])
        if isinstance(parent, yaml.MappingNode):
            for key, _ in parent.value:
                if key.value == path[-1]:
                    found: yaml.Node = key
                    return found
        return parent

    def error(self, path: Path_, message: str) -> LocatedError:
        return node_error(self.node(path), self.source, self.error_type, message)


def first_schema_error(
    data: Any, schema: dict[str, Any]
) -> tuple[Path_, jsonschema.ValidationError] | None:
    """The shallowest error of `data` against `schema` (ties broken by message)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: (len(e.absolute_path), e.message))
    if not errors:
        return None
    return list(errors[0].absolute_path), errors[0]


def schema_message(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        return str(error.message).replace("Additional properties are not allowed", "unknown key")
    return str(error.message)
