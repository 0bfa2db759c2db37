"""The position-carrying YAML loader: values as YAML 1.1 (PyYAML's safe types) gives them,
lines per key, merges, anchors, and the limits that keep hostile input bounded."""

import pytest

from minikp.scenario import yamlpos
from minikp.scenario.yamlpos import YamlError, load_documents


def test_values_lines_and_documents():
    docs = load_documents("a: 1\nb:\n  c: [x, 'y', 2.5, yes, ~]\n---\n---\nd: 2024-01-01\n")
    assert docs == [{"a": 1, "b": {"c": ["x", "y", 2.5, True, None]}}, {"d": "2024-01-01"}]
    assert docs[0].key_lines == {"a": 1, "b": 2} and docs[0]["b"].line == 3
    assert docs[0]["b"].key_lines == {"c": 3} and docs[1].line_of("d") == 6


def test_merges_explicit_keys_win_and_aliases_share():
    doc = load_documents("base: &b {x: 1, y: 2}\nm:\n  <<: [*b, {z: 3}]\n  y: 9\n"
                         "n: *b\nq: <<\n")[0]
    assert doc["m"] == {"x": 1, "y": 9, "z": 3} and doc["m"].key_lines["y"] == 4
    assert doc["n"] is doc["base"] and doc["q"] == "<<"


def test_a_key_twice_names_both_lines():
    with pytest.raises(YamlError) as e:
        load_documents("a:\n  b: 1\n  c: 2\n  b: 3\n")
    assert (e.value.line, e.value.message) == (4, 'duplicate key "b" (first at line 2)')


def test_limits(monkeypatch):
    monkeypatch.setattr(yamlpos, "MAX_DEPTH", 3)
    load_documents("a: {b: {c: 1}}\n")
    with pytest.raises(YamlError, match="nested more than 3 levels"):
        load_documents("a: {b: {c: {d: 1}}}\n")
    monkeypatch.setattr(yamlpos, "MAX_NODES", 30)
    with pytest.raises(YamlError, match="more than 30 values") as e:
        load_documents("a: &a [1, 2, 3, 4, 5]\nb: [*a, *a]\nc: [*a, *a]\n")
    assert e.value.line == 3  # the alias that went past the cap


@pytest.mark.parametrize("data, line, message", [
    (b"a: 1\nb: \xff\n", 2, "not UTF-8: byte 0xff at offset 8"),
    (b"a: 1\n\0", 2, "contains NUL bytes"),
    ("a: 1\nb: 2\n".encode("utf-16"), None, None),
])
def test_decode(data, line, message):
    if message is None:
        assert yamlpos.decode(data) == "a: 1\nb: 2\n"
        return
    with pytest.raises(YamlError) as e:
        yamlpos.decode(data)
    assert e.value.line == line and message in e.value.message
