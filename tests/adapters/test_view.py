"""The list line of the rollouts list is drawn from the detailed view: its figures add up."""

from ebbtide.adapters.view import summary_data


def _view(**over: object) -> dict[str, object]:
    view: dict[str, object] = {
        "name": "web",
        "namespace": "prod",
        "phase": "in-progress",
        "degraded": False,
        "rolloutId": 3,
        "initiator": "rollback",
        "stable": "r1",
        "canary": "r2",
        "revisions": [
            {"revision": "r1", "traffic": 80, "ready": 4, "desired": 4},
            {"revision": "r2", "traffic": 20, "ready": 1, "desired": 2},
            {"revision": "r0", "traffic": 0, "ready": 0, "desired": 0},
        ],
        "steps": [{"index": 0, "state": "done"}, {"index": 1, "state": "current"}, {"index": 2, "state": ""}],
        "rollback": None,
        "failureReason": None,
    }
    view.update(over)
    return view


def test_summary_adds_up_revisions_and_marks_the_current_step() -> None:
    line = summary_data(_view())
    assert line["traffic"] == {"r1": 80, "r2": 20}
    assert (line["ready"], line["desired"]) == (5, 6)
    assert line["step"] == "2/3"
    assert line["rollbackPercent"] is None
    assert line["initiator"] == "rollback"


def test_summary_of_a_rollback_and_of_a_rollout_between_steps() -> None:
    steps = [{"index": 0, "state": ""}]
    line = summary_data(_view(steps=steps, rollback={"percentComplete": 62.5}))
    assert line["step"] is None
    assert line["rollbackPercent"] == 62.5
