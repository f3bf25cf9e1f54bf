"""The spec routes' own checks over real HTTP, on a backend from tables: the path names the document, kinds by
name or plural, unknown kinds, the verbs asked for."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from ebbtide.adapters.api.app import create_app
from ebbtide.adapters.api.server import ApiServer

from .fakes import FakeBackend, Tokens

PATH = "/api/v1/namespaces/shop/specs"
DOC = {"apiVersion": "ebbtide.dev/v1alpha1", "kind": "Strategy", "metadata": {"name": "s"}, "spec": {}}


@pytest.fixture
def specs() -> Iterator[tuple[httpx.Client, FakeBackend]]:
    backend = FakeBackend()
    srv = ApiServer(create_app(backend, Tokens({"t": "alice", "v": "viewer"}, denied={("viewer", "update")})))
    with srv, httpx.Client(base_url=srv.url, headers={"Authorization": "Bearer t"}, timeout=10) as http:
        yield http, backend


def test_a_put_document_must_be_the_one_the_path_names(specs: tuple[httpx.Client, FakeBackend]) -> None:
    http, backend = specs
    other_kind = http.put(f"{PATH}/RolloutSpec/s", json=DOC)
    assert other_kind.status_code == 422 and other_kind.json()["detail"][0]["loc"] == ["body", "kind"]
    other_name = http.put(f"{PATH}/Strategy/t", json=DOC)
    assert other_name.status_code == 422
    assert other_name.json()["detail"][0]["loc"] == ["body", "metadata", "name"]
    assert backend.calls == []
    by_plural = http.put(f"{PATH}/strategies/s", json={"spec": {}})  # kind and name come from the path
    assert by_plural.status_code == 200
    assert backend.calls == [
        ("apply", ("shop", [{"spec": {}, "kind": "Strategy", "metadata": {"name": "s"}}], "alice"))
    ]


def test_unknown_kinds_and_bodies_that_are_not_documents(specs: tuple[httpx.Client, FakeBackend]) -> None:
    http, backend = specs
    assert http.get(f"{PATH}/Widget/x").status_code == 404
    assert http.put(f"{PATH}/Widget/x", json=DOC).status_code == 404
    not_a_list = http.post(PATH, json=DOC)
    assert not_a_list.status_code == 422 and not_a_list.json()["detail"][0]["loc"] == ["body"]
    assert backend.calls == []


def test_post_needs_create_and_update_on_each_kind(specs: tuple[httpx.Client, FakeBackend]) -> None:
    http, backend = specs
    denied = http.post(PATH, json=[DOC], headers={"Authorization": "Bearer v"})
    assert denied.status_code == 403 and "viewer may not update strategies" in denied.json()["detail"]
    assert http.post(PATH, json=[DOC]).status_code == 200
    assert [c[0] for c in backend.calls] == ["apply"]
