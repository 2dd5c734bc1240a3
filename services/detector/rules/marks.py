"""YAML that remembers where things are: mappings and lists carry their line numbers.

`safe_load` here is PyYAML's safe loader, but every mapping is a `MarkedDict` and every
list a `MarkedList` that know the (1-based) line of themselves, of each key and of each
item, so a validation error can say `rules.yaml:12: sensors.temperature...`. Scalars
are plain Python values. Never executes anything a file says (safe loader only).
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, SequenceNode


class MarkedDict(dict[Any, Any]):
    """A mapping from YAML with `line` and `key_lines[key]` (1-based)."""

    line: int = 0
    key_lines: dict[Any, int]

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class MarkedList(list[Any]):
    """A list from YAML with `line` and `item_lines[i]` (1-based)."""

    line: int = 0
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if index < len(self.item_lines) else self.line


class _Loader(yaml.SafeLoader):
    pass


def _mapping(loader: _Loader, node: MappingNode) -> MarkedDict:
    result = MarkedDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark
            ) from None
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _sequence(loader: _Loader, node: SequenceNode) -> MarkedList:
    result = MarkedList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


def safe_load(text: str) -> Any:
    """Parse YAML text; raises yaml.YAMLError (with a problem_mark) when it is not YAML."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def line_of(container: Any, key: Any) -> int:
    """The line of `key` in a marked container, or 0 when unknown."""
    if isinstance(container, MarkedDict):
        return container.line_of(key)
    if isinstance(container, MarkedList) and isinstance(key, int):
        return container.line_of(key)
    return int(getattr(container, "line", 0))
