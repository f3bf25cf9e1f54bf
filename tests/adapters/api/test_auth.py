"""TokenReviewAuthorizer against the stand-in API server's TokenReview and SubjectAccessReview (answered
from the table the test sets), over HTTP with the real kubernetes client."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import kubernetes
import pytest

from ebbtide.adapters.api.auth import ANONYMOUS, Caller, TokenReviewAuthorizer

from ..kubernetes.standin import StandIn


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def api() -> Iterator[StandIn]:
    with StandIn() as standin:
        standin.reviews.tokens["t-alice"] = ("alice", ("ops",))
        standin.reviews.tokens["t-bob"] = ("bob", ())
        standin.reviews.grant("ops", "update", "ebbtidedeployments", "shop")
        standin.reviews.grant("bob", "get", "rolloutspecs")
        yield standin


def reviews(api: StandIn, kind: str) -> int:
    return sum(1 for k, _ in api.reviews.calls if k == kind)


def test_a_token_is_the_user_the_token_review_names(api: StandIn) -> None:
    auth = TokenReviewAuthorizer(api.client)
    assert auth.authenticate("t-alice") == Caller("alice", ("ops",))
    assert auth.authenticate("t-nobody") is None
    assert auth.authenticate(None) is None and auth.authenticate("") is None  # no anonymous callers


def test_a_verb_is_allowed_as_the_subject_access_review_says_on_the_ebbtide_resource(api: StandIn) -> None:
    auth = TokenReviewAuthorizer(api.client)
    alice, bob = Caller("alice", ("ops",)), Caller("bob")
    assert auth.allowed(alice, "update", "shop", "rollouts", "orders")  # granted to her group
    assert not auth.allowed(alice, "update", "other", "rollouts", "orders")
    assert not auth.allowed(alice, "delete", "shop", "rollouts", "orders")
    assert auth.allowed(bob, "get", "shop", "rolloutspecs", "orders")
    assert not auth.allowed(bob, "update", "shop", "rolloutspecs", "orders")
    spec = next(s for k, s in api.reviews.calls if k == "SubjectAccessReview")
    assert spec == {
        "user": "alice",
        "groups": ["ops"],
        "resourceAttributes": {
            "group": "ebbtide.dev",
            "resource": "ebbtidedeployments",
            "verb": "update",
            "namespace": "shop",
            "name": "orders",
        },
    }


def test_answers_are_cached_briefly(api: StandIn) -> None:
    clock = Clock()
    auth = TokenReviewAuthorizer(api.client, ttl=10.0, clock=clock)
    alice = Caller("alice", ("ops",))
    for _ in range(3):
        assert auth.authenticate("t-alice") == alice
        assert auth.allowed(alice, "update", "shop", "rollouts", "orders")
    assert (reviews(api, "TokenReview"), reviews(api, "SubjectAccessReview")) == (1, 1)
    api.reviews.tokens.pop("t-alice")  # revoked: noticed once the cached answer expires
    clock.now = 10.5
    assert auth.authenticate("t-alice") is None
    assert (reviews(api, "TokenReview"), reviews(api, "SubjectAccessReview")) == (2, 1)


def test_anonymous_callers_read_only_when_allowed_and_never_write(api: StandIn) -> None:
    closed = TokenReviewAuthorizer(api.client)
    assert closed.authenticate(None) is None
    assert not closed.allowed(ANONYMOUS, "get", "shop", "rollouts", "orders")
    open_ = TokenReviewAuthorizer(api.client, anonymous_reads=True)
    assert open_.authenticate(None) == ANONYMOUS
    for verb in ("get", "list", "watch"):
        assert open_.allowed(ANONYMOUS, verb, "shop", "rollouts", None)
    for verb in ("create", "update", "patch", "delete"):
        assert not open_.allowed(ANONYMOUS, verb, "shop", "rollouts", "orders")
    assert reviews(api, "SubjectAccessReview") == 0  # decided without asking


def test_an_api_server_that_cannot_review_is_503_and_nothing_is_done() -> None:
    from ebbtide.adapters.api.app import create_app
    from ebbtide.adapters.api.auth import AuthUnavailable
    from ebbtide.adapters.api.server import ApiServer

    from .fakes import FakeBackend

    config = kubernetes.client.Configuration()
    config.host = "http://127.0.0.1:9"  # nothing listens
    config.retries = 0
    down = TokenReviewAuthorizer(kubernetes.client.ApiClient(config))
    with pytest.raises(AuthUnavailable, match="TokenReview"):
        down.authenticate("t-alice")
    backend = FakeBackend(rollouts={("shop", "orders"): {"rolloutId": 1}})
    srv = ApiServer(create_app(backend, down))
    with srv, httpx.Client(base_url=srv.url, headers={"Authorization": "Bearer t-alice"}) as http:
        got = http.put("/ocean/cd/rollout/shop.orders.1", json={"action": "pause"})
    assert got.status_code == 503 and got.headers["retry-after"] == "5"
    assert backend.calls == []
