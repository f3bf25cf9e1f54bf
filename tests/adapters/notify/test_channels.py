"""The notifier configuration: what a valid file looks like, and the errors a bad one gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from ebbtide.adapters.notify import Channel, NotifyConfigError, load_config

GOOD = """\
channels:
  - name: ops-webhook
    url: https://hooks.example.com/ebbtide
    secret: s3cret
    events: [rollout-failed, rollout-rolled-back, rollout-failed-to-roll-back]
    maxAttempts: 8
  - name: team-slack
    kind: slack
    url: https://hooks.slack.com/services/T000/B000/XXXX
"""


def test_a_valid_file_gives_its_channels(tmp_path: Path) -> None:
    path = tmp_path / "notify.yaml"
    path.write_text(GOOD)
    hook, team = load_config(path).channels
    assert hook.kind == "webhook" and hook.max_attempts == 8 and hook.timeout == 10.0
    assert hook.secret is not None and hook.secret.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(hook)  # a secret never shows in logs
    assert hook.wants("rollout-failed") and not hook.wants("rollout-started")
    assert team.kind == "slack" and team.events is None and team.wants("rollout-started")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "channels:\n  - name: a\n    url: https://x.example\n    events: [rollout-exploded]\n",
            "channels[0].events[0]: Input should be 'rollout-started'",
        ),
        ("channels:\n  - name: a\n    url: not a url\n", "channels[0].url: Input should be a valid URL"),
        ("channels:\n  - name: a\n", "channels[0].url: Field required"),
        (
            "channels:\n  - name: a\n    url: https://x.example\n    maxAttempts: 0\n",
            "channels[0].maxAttempts: Input should be greater than or equal to 1",
        ),
        (
            "channels:\n  - name: a\n    url: https://x.example\n    colour: red\n",
            "channels[0].colour: Extra",
        ),
        ("channels: [\n", "cannot read"),
    ],
    ids=["unknown-event", "bad-url", "no-url", "no-attempts", "unknown-field", "not-yaml"],
)
def test_a_bad_file_names_the_file_the_field_and_the_reason(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "notify.yaml"
    path.write_text(text)
    with pytest.raises(NotifyConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def test_an_unknown_event_is_named(tmp_path: Path) -> None:
    path = tmp_path / "notify.yaml"
    path.write_text("channels:\n  - name: a\n    url: https://x.example\n    events: [rollout-exploded]\n")
    with pytest.raises(NotifyConfigError, match=r"\(got 'rollout-exploded'\)$"):
        load_config(path)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NotifyConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


def test_channels_are_built_in_code_too() -> None:
    channel = Channel(name="x", url="http://127.0.0.1:1/hook", max_attempts=2)  # type: ignore[arg-type]
    assert channel.policy().max_attempts == 2
