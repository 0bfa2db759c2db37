"""YAML with positions, safe against hostile input.

Mappings load as `PosDict`, which remembers the line of the mapping and of each key, so that
an error can name the exact line of the field that is wrong.

The documents are built here from the parser's events (libyaml's when present: fast) by an
iterative loop rather than by PyYAML's recursive composer and constructor, so that:
- nesting deeper than MAX_DEPTH is refused before anything recurses (libyaml's composer
  crashes the process on a 100,000-deep file, PyYAML's raises RecursionError);
- aliases are counted at their expanded size, so an alias bomb is refused at MAX_NODES
  instead of exhausting memory in whatever later walks the values;
- a key given twice in one mapping is an error naming both lines, as kubectl's strict
  decoding does.
Reading bytes into text (size, file type, encoding) is `decode`'s job."""

from __future__ import annotations

import codecs

import yaml

MAX_DEPTH = 100  # Kubernetes objects nest about 15 deep; kube-apiserver's JSON limit is 10,000
MAX_NODES = 1_000_000  # values per file, aliases counted expanded (20,000 Services: ~0.6M;
#                        the worst case, a million tiny mappings, takes ~300 MB)

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR, _MERGE = "tag:yaml.org,2002:str", "tag:yaml.org,2002:merge"
_AS_TEXT = (_STR, "tag:yaml.org,2002:timestamp")
_SCALAR_TAGS = tuple(f"tag:yaml.org,2002:{t}" for t in ("int", "float", "bool", "null"))
_MAP_TAGS = (None, "!", "tag:yaml.org,2002:map")
_SEQ_TAGS = (None, "!", "tag:yaml.org,2002:seq")
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
         (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
         (codecs.BOM_UTF16_BE, "utf-16-be"))


class YamlError(Exception):
    """Input that is not YAML minikp accepts; `line` is 1-based, 0 when unknown."""

    def __init__(self, message: str, line: int = 0):
        super().__init__(message)
        self.message, self.line = message, line


class PosDict(dict):
    __slots__ = ("line", "key_lines")  # no __dict__: a million of them stay small

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.line, self.key_lines = 0, {}

    def line_of(self, key) -> int:
        return self.key_lines.get(key, self.line)


def line_of(obj, key=None) -> int:
    if isinstance(obj, PosDict):
        return obj.line_of(key) if key is not None else obj.line
    return 0


def decode(data: bytes) -> str:
    """Text from a file's bytes: UTF-8, or UTF-16/32 marked by a byte-order mark."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            body = data[len(bom):]
            try:
                return body.decode(codec)
            except UnicodeDecodeError as e:
                line = body[:e.start].decode(codec, "replace").count("\n") + 1
                raise YamlError(f"not valid {codec.upper()} (its byte-order mark says so): "
                                f"bad bytes at offset {e.start + len(bom)}", line) from None
    nul = data.find(b"\0")
    if nul >= 0:
        raise YamlError("contains NUL bytes: a binary file, or UTF-16/32 without a byte-order "
                        "mark; save it as UTF-8", data.count(b"\n", 0, nul) + 1)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise YamlError(f"not UTF-8: byte 0x{data[e.start]:02x} at offset {e.start} "
                        "(save the file as UTF-8)", line) from None


class _Builder:
    """Scalars' values, and the anchors of the current document with their sizes (an alias
    counts as the size of what it stands for)."""

    def __init__(self, loader):
        self.loader = loader
        self.anchors: dict = {}  # anchor -> (value, size)
        self.plain: dict = {}  # plain scalar text -> its value (ints, bools, strings: immutable)

    def scalar(self, ev, at_key):
        tag = ev.tag
        if tag is None:
            if not ev.implicit[0]:  # quoted or a block: text
                return ev.value
            value = self.plain.get(ev.value, _NOKEY)  # the same plain text, the same value
            if value is _NOKEY:
                value = self._typed(ev, self.loader.resolve(yaml.ScalarNode, ev.value, ev.implicit))
                if len(self.plain) < 100_000 and value is not _MERGE_KEY:
                    self.plain[ev.value] = value
        else:
            value = self._typed(ev, _STR if tag == "!" else tag)
        if value is _MERGE_KEY and not at_key:
            return ev.value
        return value

    def _typed(self, ev, tag):
        if tag in _AS_TEXT:  # timestamps stay text, as Kubernetes' YAML-to-JSON keeps them
            return ev.value
        if tag == _MERGE:
            return _MERGE_KEY
        construct = self.loader.yaml_constructors.get(tag) if tag in _SCALAR_TAGS else None
        if construct is None:
            raise YamlError(f"unsupported YAML tag {tag[:60]!r}", ev.start_mark.line + 1)
        node = yaml.ScalarNode(tag, ev.value, ev.start_mark, ev.end_mark, ev.style)
        try:
            return construct(self.loader, node)
        except (yaml.YAMLError, ValueError) as e:
            raise YamlError(f"bad {tag.rsplit(':', 1)[-1]} value: {e}"[:200],
                            ev.start_mark.line + 1) from None


class _Open:
    """A mapping or sequence being built: its value, anchor, size so far, pending key."""

    __slots__ = ("value", "anchor", "size", "key", "key_line", "merges", "is_map")

    def __init__(self, value, anchor, is_map):
        self.value, self.anchor, self.is_map = value, anchor, is_map
        self.size, self.key, self.key_line, self.merges = 1, _NOKEY, 0, None


_NOKEY = object()


def _put_value(top: _Open, key, value) -> None:
    """Set a mapping's key (a second time: an error) or collect a merge (`<<`)."""
    d = top.value
    if key is _MERGE_KEY:  # checked in _close: a list here may still be filling
        top.merges = (top.merges or []) + [value]
        return
    if key in d.key_lines:
        raise YamlError(f'duplicate key "{str(key)[:80]}" (first at line {d.key_lines[key]})',
                        top.key_line)
    d[key] = value
    d.key_lines[key] = top.key_line


_MERGE_KEY = object()


def _close(top: _Open) -> None:
    """Apply a mapping's merges (`<<`) once its own keys are all in."""
    d = top.value
    for m in (m for ms in top.merges for m in (ms if isinstance(ms, list) else [ms])):
        if not isinstance(m, PosDict):
            raise YamlError("<<: a merge key takes a mapping or a list of mappings", d.line)
        for k, v in m.items():  # explicit keys win; earlier merged mappings win
            if k not in d:
                d[k] = v
                d.key_lines[k] = m.key_lines.get(k, m.line)


def load_documents(text: str) -> list:
    """Every document of a multi-document YAML text (empty documents dropped)."""
    loader = _Loader(text)
    try:
        return _documents(loader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        raise YamlError(f"not valid YAML: {e.problem or e.context or e}",
                        mark.line + 1 if mark else 0) from None
    except yaml.YAMLError as e:
        raise YamlError(f"not valid YAML: {e}") from None
    finally:
        loader.dispose()


def _too_many(ev):
    return YamlError(f"more than {MAX_NODES:,} values (aliases counted expanded): refused "
                     "(an alias bomb, or a file too large to validate)", ev.start_mark.line + 1)


def _documents(loader) -> list:
    """The hot loop of loading (20,000 Services are ~0.6M events): kept flat on purpose.
    A collection is attached to its parent when it starts; its size is added when it ends."""
    docs, b, stack = [], _Builder(loader), []
    get, scalar, plain = loader.get_event, b.scalar, b.plain
    Scalar, Alias = yaml.ScalarEvent, yaml.AliasEvent
    MapStart, SeqStart = yaml.MappingStartEvent, yaml.SequenceStartEvent
    MapEnd, SeqEnd = yaml.MappingEndEvent, yaml.SequenceEndEvent
    top, done, total = None, None, 0
    new_posdict = dict.__new__
    while True:
        ev = get()
        cls = ev.__class__
        if cls is Scalar:
            # the common cases without a call: quoted text, plain text seen before ("<<"
            # is never cached: it means a merge as a key and text as a value)
            value = (plain.get(ev.value, _NOKEY) if ev.implicit[0] else ev.value) \
                if ev.tag is None else _NOKEY
            if value is _NOKEY:
                value = scalar(ev, top is not None and top.is_map and top.key is _NOKEY)
            size = 1
            if ev.anchor is not None:
                b.anchors[ev.anchor] = (value, 1)
        elif cls is MapEnd or cls is SeqEnd:
            if top.merges:
                _close(top)
            if top.anchor is not None:
                b.anchors[top.anchor] = (top.value, top.size)
            size = top.size
            stack.pop()
            top = stack[-1] if stack else None
            if top is not None:
                top.size += size
            continue
        elif cls is MapStart or cls is SeqStart:
            is_map = cls is MapStart
            if ev.tag not in (_MAP_TAGS if is_map else _SEQ_TAGS):
                raise YamlError(f"unsupported YAML tag {ev.tag[:60]!r}", ev.start_mark.line + 1)
            if len(stack) >= MAX_DEPTH:
                raise YamlError(f"nested more than {MAX_DEPTH} levels deep: refused",
                                ev.start_mark.line + 1)
            total += 1
            if total > MAX_NODES:
                raise _too_many(ev)
            if is_map:
                value = new_posdict(PosDict)  # without __init__: its slots are set here
                value.line, value.key_lines = ev.start_mark.line + 1, {}
            else:
                value = []
            if top is None:
                done = value
            elif not top.is_map:
                top.value.append(value)
            elif top.key is _NOKEY:
                raise YamlError("a mapping key must be a scalar (a string or number), not a "
                                f"{'mapping' if is_map else 'list'}", ev.start_mark.line + 1)
            else:
                key, top.key = top.key, _NOKEY
                _put_value(top, key, value)
            top = _Open(value, ev.anchor, is_map)
            stack.append(top)
            continue
        elif cls is Alias:
            if ev.anchor not in b.anchors:
                raise YamlError(f"unknown alias *{ev.anchor[:60]}", ev.start_mark.line + 1)
            value, size = b.anchors[ev.anchor]
        elif cls is yaml.DocumentStartEvent:
            done, b.anchors = None, {}
            continue
        elif cls is yaml.DocumentEndEvent:
            if done is not None:
                docs.append(done)
            continue
        elif ev is None:
            return docs
        else:  # stream start and end
            continue
        total += size  # a scalar or an alias: a value in place
        if total > MAX_NODES:
            raise _too_many(ev)
        if top is None:
            done = value
            continue
        top.size += size
        if not top.is_map:
            top.value.append(value)
        elif top.key is not _NOKEY:
            key, top.key = top.key, _NOKEY
            _put_value(top, key, value)
        elif isinstance(value, (dict, list)):  # an alias of a collection as a key
            raise YamlError("a mapping key must be a scalar (a string or number), not a "
                            f"{'mapping' if isinstance(value, dict) else 'list'}",
                            ev.start_mark.line + 1)
        else:
            top.key, top.key_line = value, ev.start_mark.line + 1
