"""The parts of delivery on their own: the scheme list, settings, the message text,
redaction, output paths."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest

from runner.apprise_schemes import SCHEMES
from runner.deliver.heartbeat import Heartbeat
from runner.deliver.message import MAX_BODY, Report, compose
from runner.deliver.output import OutputRefused, output_file, render_output
from runner.deliver.send import with_timeouts
from runner.deliver.targets import Redactor
from runner.delivery_settings import HeartbeatSettings, UrlSource
from runner.errors import SettingsError
from runner.home import Home
from runner.init import init_home
from runner.settings import load_settings
from runner.tasks.delivery import output_problem
from runner.tasks.files import parse_task
from tests.fakes import FakeClock
from tests.receiver import Receiver


def test_the_scheme_list_is_the_installed_apprise_list() -> None:
    import apprise

    known: set[str] = set()
    for schema in apprise.Apprise().details(show_disabled=True)["schemas"]:
        for key in ("protocols", "secure_protocols"):
            value = schema.get(key) or ()
            known.update(v.lower() for v in ([value] if isinstance(value, str) else value))
    assert known == set(SCHEMES), "regenerate runner/apprise_schemes.py"


def test_settings_take_targets_defaults_and_a_heartbeat(tmp_path: Path) -> None:
    path = tmp_path / "runner.yaml"
    path.write_text(
        "notify:\n"
        "  phone: {url_env: NTFY_URL}\n"
        "  desktop: {url: 'dbus://'}\n"
        "  mail: {url_cmd: 'pass show runner/mail-url', timeout: 20s}\n"
        "notify_default: [desktop]\n"
        "heartbeat: {url_env: HC_URL, every: 5m}\n",
        encoding="utf-8",
    )
    settings = load_settings(path)
    assert settings.notify["phone"].source.url_env == "NTFY_URL"
    assert settings.notify["desktop"].source.url == "dbus://"
    assert settings.notify["mail"].timeout == 20.0
    assert settings.notify_default == ("desktop",)
    assert settings.heartbeat is not None and settings.heartbeat.every == 300.0


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("notify:\n  a: {url: 'x', url_env: Y}\n", 2, "exactly one of url, url_env or url_cmd"),
        ("notify:\n  a: {urls: 'json://x'}\n", 2, "unknown key 'urls' in notify.a"),
        ("notify:\n  a: {url: 'json://h/?token=abc'}\n", 2, "must not contain a token"),
        ("notify:\n  a: {url_env: 'not a name'}\n", 2, "must name an environment variable"),
        ("notify: [a]\n", 1, "notify must be a mapping"),
        ("notify:\n  heartbeat: {url: 'dbus://'}\n", 2, "'heartbeat' is reserved"),
        ("heartbeat: {url: 'json://h/'}\n", 1, "must be an http:// or https:// URL"),
        ("heartbeat: {url_env: HC, every: 0s}\n", 1, "heartbeat.every must be longer than zero"),
    ],
)
def test_bad_delivery_settings_name_the_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = tmp_path / "runner.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        load_settings(path)
    assert caught.value.line == line
    assert message in caught.value.problem
    assert "abc" not in caught.value.problem


def test_the_message_is_short_plain_and_the_same_text_for_every_service() -> None:
    answer = "\n".join(f"line {n} \x1b[31mred\x1b[0m" for n in range(50)) + "x" * 5000
    report = Report(
        task_id="daily-1a2b3c4d/20261126T080000Z",
        title="Daily\nbriefing " + "long " * 40,
        status="completed",
        when="2026-11-26T09:00:00+01:00",
        text=answer,
        output="plans/2026-11-26.md",
    )
    message = compose(report)
    assert "\n" not in message.title and len(message.title) <= 80
    assert message.title.endswith(": completed")
    lines = message.body.splitlines()
    assert lines[0] == "completed · Thu 2026-11-26 08:00"  # local time (TZ=UTC here)
    assert lines[1] == "line 0 [31mred[0m"  # the escape character is dropped
    assert "line 5 [31mred[0m" in lines and "line 6 [31mred[0m" not in lines
    assert lines[-2:] == ["task: daily-1a2b3c4d/20261126T080000Z", "output: plans/2026-11-26.md"]
    assert len(message.body) <= MAX_BODY
    assert "\x1b" not in message.body


def test_a_failure_message_carries_the_error() -> None:
    report = Report("plan", "Plan", "failed", "2026-11-26", "overloaded after 3 tries", None, 3)
    body = compose(report).body.splitlines()
    assert body == [
        "failed · Thu 2026-11-26 · after 3 attempts",
        "overloaded after 3 tries",
        "task: plan",
    ]


def test_the_redactor_hides_a_secret_url_and_its_parts() -> None:
    url = "ntfys://user:pa55word@ntfy.example.com/topic-s3cr3t?priority=high&token=tk-123"
    redact = Redactor(url, secret=True)
    said = f"failed for {url}; host ntfy.example.com topic topic-s3cr3t pass pa55word tk-123"
    cleaned = redact(said)
    for piece in ("pa55word", "topic-s3cr3t", "tk-123", "ntfy.example.com", url):
        assert piece not in cleaned
    assert Redactor("json://localhost/x", secret=False)("to json://localhost/x") == (
        "to json://localhost/x"
    )


def test_timeouts_are_added_without_touching_the_users_parameters() -> None:
    assert with_timeouts("json://h/p", 5) == "json://h/p?cto=5&rto=5"
    assert with_timeouts("json://h/p?+X-A=b%20c&rto=1", 5) == "json://h/p?+X-A=b%20c&rto=1&cto=5"


@pytest.mark.parametrize(
    "template",
    [
        "../x.md",
        "/abs.md",
        "a/../../x.md",
        "LOGS/x.md",
        ".runner/x",
        "./.git/x",
        "sub/.git/hooks/x",
        "a/",
        "{x}.md",
        "runner.yaml",
        "./.mcp.json",
        "tasks/{date}.yaml",
        "Tasks/x.yaml",
    ],
)
def test_output_templates_that_are_refused(template: str) -> None:
    assert output_problem(template) is not None


def test_output_paths_are_checked_against_the_disk(home: Home, tmp_path: Path) -> None:
    (home.root / "inside").mkdir()
    assert output_file(home, "inside/a.md") == (home.root / "inside" / "a.md").resolve()
    (home.root / "link").symlink_to(home.logs)  # a symlink into logs/
    with pytest.raises(OutputRefused, match="logs/ are never open"):
        output_file(home, "link/a.md")
    (home.root / "away").symlink_to(tmp_path)
    with pytest.raises(OutputRefused, match="outside the home"):
        output_file(home, "away/a.md")
    (home.root / "into-tasks").symlink_to(home.tasks)  # the text passes; the disk does not
    with pytest.raises(OutputRefused, match="names it"):
        output_file(home, "into-tasks/a.yaml")


def test_a_hand_run_tasks_date_is_today_in_local_time(home: Home) -> None:
    path = home.tasks / "t.yaml"
    path.write_text("instructions: x\noutput: 'o/{date}-{stamp}.md'\n", encoding="utf-8")
    task = parse_task(home, path)
    started = datetime(2026, 11, 26, 23, 59, 59, tzinfo=UTC)
    assert render_output(task, started) == "o/2026-11-26-20261126T235959Z.md"


def test_a_corrupt_delivery_state_is_ignored_and_rewritten(home: Home) -> None:
    from runner.deliver.state import read_delivery, record_result, state_path

    state_path(home).parent.mkdir(parents=True, exist_ok=True)
    state_path(home).write_text('{"targets": [1, 2', encoding="utf-8")
    assert read_delivery(home) == {}
    record_result(home, "phone", False, "HTTP 500", "2026-11-26T08:00:00.000000Z")
    assert read_delivery(home)["phone"]["last_error"] == "HTTP 500"


def test_a_heartbeat_url_with_credentials_sends_them_as_basic_auth(
    tmp_path: Path, receiver: Receiver
) -> None:
    # Self-hosted healthchecks behind basic auth: urllib alone would look up a host
    # named "user:pw@127.0.0.1" and fail with "Name or service not known".
    home = Home(tmp_path / "home")
    init_home(home)
    url = receiver.http("/ping/abc").replace("http://", "http://me:s%40cret@")
    warnings: list[str] = []
    beat = Heartbeat(
        home,
        HeartbeatSettings(UrlSource(url=url)),
        FakeClock(datetime(2026, 11, 25, tzinfo=UTC)),
        lambda: True,
        warnings.append,
    )
    assert beat.ping("") and warnings == []
    (request,) = receiver.wait_for(1, method="GET")
    assert request.path == "/ping/abc"
    assert request.authorization == "Basic " + base64.b64encode(b"me:s@cret").decode()
