"""The study file's YAML, read safely: no objects built, nesting and alias expansion bounded, every
error naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from smcl_tune.errors import ConfigError, in_file, short_repr

MAX_YAML_VALUES = 10_000  # a study file holds a few hundred; aliases (`*name`) count once per use
MAX_YAML_DEPTH = 64


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses documents nested too deeply, or whose aliases expand
    past MAX_YAML_VALUES values, while it composes them (before any value is built)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._sizes: dict[int, int] = {}  # id of a composed node -> its values with aliases expanded
        self._total = 0
        self._checked: set[int] = set()  # ids of the mappings checked for a key given twice

    def compose_node(self, parent, index):
        is_alias = self.check_event(yaml.AliasEvent)
        line = self.peek_event().start_mark.line + 1
        self._depth += 1
        if self._depth > MAX_YAML_DEPTH:
            raise ConfigError(f"nested more than {MAX_YAML_DEPTH} levels deep (line {line})")
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if is_alias:
            size = self._sizes.get(id(node))
            if size is None:
                raise ConfigError(f"an alias refers to the value that holds it (line {line})")
            self._count(size, line)
        else:
            self._sizes[id(node)] = 1 + sum(self._sizes[id(child)] for child in _children(node))
            self._count(1, line)
        return node

    def flatten_mapping(self, node):
        """A key given twice in one mapping is refused: YAML would keep the last one silently, so a
        second `search:` would drop the first. Keys are compared as the values they load as, as a dict
        compares them. Keys a merge (`<<: *name`) brings may be overridden.
        Checked before PyYAML flattens the merges, which rewrites the node in place (an anchored
        node met again through its alias is checked once)."""
        if id(node) not in self._checked:
            self._checked.add(id(node))
            first: dict[Any, tuple[yaml.ScalarNode, int]] = {}  # a key's value -> its first node, its line
            for key, _ in node.value:
                if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
                    continue
                line = key.start_mark.line + 1
                value = self.construct_object(key)  # `1` and `1.0`, or `null` and `~`, are one key of a dict
                if value in first:
                    earlier, first_line = first[value]
                    raise ConfigError(
                        f"{_same_key(earlier, key)} in one mapping (lines {first_line} and {line}): YAML would keep "
                        "the second and drop the first; give it once"
                    )
                first[value] = (key, line)
        super().flatten_mapping(node)

    def _count(self, values: int, line: int) -> None:
        self._total += values
        if self._total > MAX_YAML_VALUES:
            raise ConfigError(
                f"more than {MAX_YAML_VALUES:,} values once its aliases (*name) are expanded (line {line}); "
                "a study file needs a few hundred: write the values out"
            )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return node.value if isinstance(node, yaml.SequenceNode) else []


def _parse_yaml(text: str) -> Any:
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        return None if node is None else loader.construct_document(node)
    finally:
        loader.dispose()


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping safely (no objects built, nesting and alias expansion bounded); errors
    name the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error.strerror})") from None
    try:
        raw = _parse_yaml(text)
    except ConfigError as error:
        raise in_file(path, error) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{path}: invalid YAML{where}: {getattr(error, 'problem', error)}") from None
    if raw is None:  # nothing, comments only, or an empty document (`---`)
        raise ConfigError(f"{path}: the file is empty (it holds no YAML values)")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    return raw


def _same_key(earlier: yaml.ScalarNode, later: yaml.ScalarNode) -> str:
    """Two keys that load as one, as the file wrote them: `'lr' twice`, `'1' and '1.0', one key,`, or,
    where only a tag tells them apart (`!!float 1` and `1`), with the type each has."""
    if earlier.value != later.value:
        return f"{short_repr(earlier.value)} and {short_repr(later.value)}, one key,"
    if earlier.tag != later.tag:
        kinds = [node.tag.rsplit(":", 1)[-1] for node in (earlier, later)]
        return f"{short_repr(earlier.value)} ({kinds[0]}) and {short_repr(later.value)} ({kinds[1]}), one key,"
    return f"{short_repr(later.value)} twice"
