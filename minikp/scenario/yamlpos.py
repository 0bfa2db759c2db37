"""YAML with positions: mappings load as `PosDict`, which remembers the line of the mapping
and of each key, so that an error can name the exact line of the field that is wrong."""

from __future__ import annotations

import yaml


class PosDict(dict):
    line: int = 0
    key_lines: dict

    def line_of(self, key) -> int:
        return self.key_lines.get(key, self.line)


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader, node):
    loader.flatten_mapping(node)
    d = PosDict()
    d.line = node.start_mark.line + 1
    d.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        d[key] = loader.construct_object(value_node, deep=True)
        d.key_lines[key] = key_node.start_mark.line + 1
    return d


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_documents(text: str) -> list:
    """Every document of a multi-document YAML text (empty documents dropped)."""
    return [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]


def line_of(obj, key=None) -> int:
    if isinstance(obj, PosDict):
        return obj.line_of(key) if key is not None else obj.line
    return 0
