"""YAML that costs unbounded memory or stack is refused with a located problem, quickly."""

from __future__ import annotations

import time

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from ebbtide.core import yamlsafe
from ebbtide.core.spec import SpecError, load_text, parse_documents
from ebbtide.core.yamlsafe import MAX_ALIAS_EXPANSION, MAX_DEPTH, YamlProblem, load_documents


def laughs(levels: int, fan: int = 9) -> str:
    """The "billion laughs": each level lists the previous one ``fan`` times (fan**levels values)."""
    lines = ["a0: &a0 [" + ", ".join(["lol"] * fan) + "]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * fan) + "]")
    return "\n".join(lines) + "\n"


@pytest.fixture(params=["libyaml", "python"])
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both parsers: libyaml's when PyYAML has it, and the pure-Python fallback."""
    if request.param == "libyaml":
        if not hasattr(yaml, "CSafeLoader"):
            pytest.skip("PyYAML built without libyaml")
        monkeypatch.setattr(yamlsafe, "_Loader", yaml.CSafeLoader)
    else:
        monkeypatch.setattr(yamlsafe, "_Loader", yaml.SafeLoader)
    return str(request.param)


def test_the_libyaml_parser_is_used_when_present() -> None:
    assert yamlsafe._Loader is getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def test_an_alias_bomb_is_refused_at_once(loader: str) -> None:
    text = laughs(9)  # 9**10 values once expanded, from under 1 KB of text
    assert len(text) < 1400
    started = time.perf_counter()
    with pytest.raises(YamlProblem) as info:
        load_documents(text)
    assert time.perf_counter() - started < 2.0
    assert info.value.document == 1
    # every value counts once per place it appears: the mapping, its keys, each list and each "lol"
    sizes = [1 + 9]
    for _ in range(9):
        sizes.append(1 + 9 * sizes[-1])
    expanded = 1 + sum(1 + s for s in sizes)
    assert f"aliases (*name) expand this document to {expanded:,} values" in info.value.reason


def test_an_alias_bomb_in_a_spec_is_a_located_spec_error(loader: str) -> None:
    body = "\n".join("      " + line for line in laughs(8).splitlines())
    text = f"kind: Strategy\nmetadata: {{name: s}}\n---\nkind: VerificationTemplate\nspec:\n  x:\n{body}\n"
    with pytest.raises(SpecError) as info:
        parse_documents(text, "bomb.yaml")
    [problem] = info.value.problems
    assert (problem.file, problem.document) == ("bomb.yaml", 2)
    assert f"at most {MAX_ALIAS_EXPANSION:,} may come from aliases" in problem.reason


def test_aliases_that_add_little_are_fine(loader: str) -> None:
    [doc] = load_documents("base: &b {delay: 5s, jitter: 1s}\nv1: *b\nv2: *b\n" + laughs(3, fan=10))
    assert doc.body["v2"] == {"delay": "5s", "jitter": "1s"}
    assert len(doc.body["a3"]) == 10


def test_expansion_limit_is_exact() -> None:
    # a list of n aliases to a list of m scalars adds n*(m+1) values beyond those written
    m = 99
    n = MAX_ALIAS_EXPANSION // (m + 1)
    inner = "[" + ", ".join(["x"] * m) + "]"
    ok = f"a: &a {inner}\nb: [" + ", ".join(["*a"] * n) + "]\n"
    load_documents(ok)
    with pytest.raises(YamlProblem):
        load_documents(ok.replace("[*a", "[*a, *a"))


def test_a_recursive_alias_is_refused(loader: str) -> None:
    with pytest.raises(YamlProblem) as info:
        load_documents("a: &a [1, *a]\n")
    assert "contains an alias to itself" in info.value.reason


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 500, 5000])
def test_deep_nesting_is_refused_without_recursion_error(loader: str, depth: int) -> None:
    for text in ("[" * depth + "]" * depth, "".join(f"{'  ' * i}k:\n" for i in range(depth)) + "  " * depth):
        with pytest.raises(YamlProblem) as info:
            load_documents(text)
        assert "nest" in info.value.reason


def test_nesting_up_to_the_limit_is_fine(loader: str) -> None:
    [doc] = load_documents("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    value = doc.body
    for _ in range(MAX_DEPTH - 1):
        value = value[0]
    assert value == []


def test_the_document_at_fault_is_named() -> None:
    with pytest.raises(SpecError) as info:
        load_text("kind: Strategy\n---\na: &a [*a]\n", "f.yaml")
    assert [p.document for p in info.value.problems] == [2]


@given(st.text(max_size=200))
def test_any_text_loads_or_is_a_yaml_problem(text: str) -> None:
    try:
        load_documents(text)
    except YamlProblem as exc:
        assert exc.reason and exc.document >= 1


@given(st.recursive(st.none() | st.integers() | st.text(max_size=5), lambda c: st.lists(c, max_size=3)))
def test_plain_values_load_as_written(value: object) -> None:
    text = yaml.safe_dump({"v": value})
    assert [d.body for d in load_documents(text)] == [{"v": value}]
