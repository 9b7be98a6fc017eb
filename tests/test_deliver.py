"""Delivery through the real CLI and the real Apprise library, to a local receiver
(SPEC "Delivery"): messages, unreachable and hanging targets, `runner notify`,
`runner check` of targets, and secrets that never reach a file or the output."""

from __future__ import annotations

import json
import time
from pathlib import Path

from runner.home import Home
from tests.conftest import cli, kill_at
from tests.receiver import Receiver

SECRET = "s3cr3t-T0ken-4f9a2c"  # a token in the URL path, as ntfy topics and webhooks have


def settings(home: Home, text: str) -> None:
    home.settings_file.write_text(text, encoding="utf-8")


def task(home: Home, name: str, extra: str, instructions: str = "Say hello.") -> Path:
    path = home.tasks / f"{name}.yaml"
    path.write_text(f"title: Daily plan\ninstructions: {instructions}\n{extra}", encoding="utf-8")
    return path


def everything_under(root: Path) -> str:
    """Every file's bytes under `root`, .runner/ included, as one text."""
    parts = []
    for path in sorted(root.rglob("*")):
        if path.is_file():
            parts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(parts)


def test_a_completed_run_notifies_with_title_status_answer_task_and_output(
    home: Home, receiver: Receiver
) -> None:
    settings(home, "notify:\n  phone: {url_env: PHONE_URL}\nnotify_default: [phone]\n")
    task(home, "plan", "output: plans/{date}-{task}.md\nnotify_on: [completed, failed]\n")
    env = {"PHONE_URL": receiver.url(f"/{SECRET}")}
    done = cli(home, "run", "plan", env=env)
    assert done.returncode == 0, done.stderr
    [message] = receiver.wait_for(1)
    assert message.path.startswith(f"/{SECRET}")  # it really went to the URL from the env
    body = message.body
    assert body is not None
    assert body["title"] == "Daily plan: completed"
    assert body["type"] == "success"
    lines = body["message"].splitlines()
    assert lines[0].startswith("completed · ")
    assert "[offline brain] No model was called." in lines
    assert "task: plan" in lines
    [written] = list((home.root / "plans").glob("*-plan.md"))
    assert f"output: plans/{written.name}" in lines
    assert len(body["message"]) <= 600
    # The URL (and so the secret in it) is in no file and no output.
    assert SECRET not in everything_under(home.root)
    assert SECRET not in done.stdout + done.stderr


def test_only_statuses_in_notify_on_are_sent(home: Home, receiver: Receiver) -> None:
    settings(home, f"notify:\n  phone: {{url: '{receiver.url()}'}}\n")
    task(home, "quiet", "notify: [phone]\n")  # default notify_on: [failed]
    assert cli(home, "run", "quiet").returncode == 0
    time.sleep(0.3)  # a message would have been posted before `run` exited
    assert receiver.requests == []


def test_a_receiver_that_is_down_is_one_warning_and_the_run_still_completes(
    home: Home, receiver: Receiver
) -> None:
    port = receiver.port
    receiver.stop()  # nothing listens on the port any more
    settings(home, "notify:\n  phone: {url_env: PHONE_URL, timeout: 2s}\nnotify_default: [phone]\n")
    task(home, "plan", "notify_on: [completed]\n")
    env = {"PHONE_URL": f"json://127.0.0.1:{port}/{SECRET}"}
    started = time.monotonic()
    done = cli(home, "run", "plan", env=env)
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, done.stderr
    assert "notification to phone not sent" in warnings[0]
    assert SECRET not in done.stderr + done.stdout
    assert took < 15
    record = json.loads((home.logs / "plan.jsonl").read_text().splitlines()[-1])
    assert record["status"] == "completed"
    listed = json.loads(cli(home, "list", "--json", env=env).stdout)
    entry = listed["delivery"]["phone"]
    assert entry["last_error"] and entry["last_error_at"] and "last_ok" not in entry
    assert SECRET not in everything_under(home.root)


def test_a_receiver_that_hangs_is_abandoned_after_the_timeout(
    home: Home, receiver: Receiver
) -> None:
    receiver.hang = True
    settings(home, "notify:\n  phone: {url_env: PHONE_URL, timeout: 1s}\nnotify_default: [phone]\n")
    task(home, "plan", "notify_on: [completed]\n")
    started = time.monotonic()
    done = cli(home, "run", "plan", env={"PHONE_URL": receiver.url(f"/{SECRET}")})
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert len(receiver.requests) == 1  # it did arrive, and was never answered
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, done.stderr
    assert SECRET not in done.stderr
    assert took < 8  # the process start and the run, plus at most ~2 s for the target
    listed = json.loads(cli(home, "list", "--json").stdout)
    assert {t["id"]: t["status"] for t in listed["tasks"]}["plan"] == "completed"


def test_runner_notify_sends_a_test_message_and_says_whether_it_went(
    home: Home, receiver: Receiver
) -> None:
    settings(
        home,
        "notify:\n  phone: {url_env: PHONE_URL}\n  gone: {url: 'json://127.0.0.1:9/'}\n",
    )
    env = {"PHONE_URL": receiver.url(f"/{SECRET}")}
    done = cli(home, "notify", "phone", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("phone: sent")
    [message] = receiver.wait_for(1)
    assert message.body is not None and message.body["title"] == "runner: test"
    failed = cli(home, "notify", "gone", "--json", env=env)
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["ok"] is False
    unknown = cli(home, "notify", "nope")
    assert unknown.returncode == 2 and "defined: gone, phone" in unknown.stderr
    unset = cli(home, "notify", "phone")  # PHONE_URL not set
    assert unset.returncode == 1 and "PHONE_URL is not set" in unset.stderr
    assert SECRET not in everything_under(home.root)


def test_check_names_file_and_line_of_a_bad_target(home: Home) -> None:
    settings(home, "retries: 1\nnotify:\n  phone: {url: 'nosuch://x'}\n")
    done = cli(home, "check")
    assert done.returncode == 1
    assert f"{home.settings_file}:3: notify.phone.url unknown notification scheme" in done.stdout
    settings(home, "notify:\n  mail: {url: 'mailto://me:hunter22@example.com'}\n")
    done = cli(home, "check")
    assert f"{home.settings_file}:2: notify.mail.url must not contain a password" in done.stdout
    assert "hunter22" not in done.stdout + done.stderr
    settings(home, "notify:\n  tg: {url: 'tgram://123456:ABCDEF/42'}\n")
    assert "holds a token: use url_env or url_cmd" in cli(home, "check").stdout
    settings(home, "notify:\n  desktop: {url: 'dbus://'}\nnotify_default: [phone]\n")
    done = cli(home, "check")
    assert f"{home.settings_file}:3: notify_default: no target 'phone'" in done.stdout


def test_check_names_a_task_notifying_an_unknown_target(home: Home) -> None:
    settings(home, "notify:\n  desktop: {url: 'dbus://'}\n")
    path = task(home, "plan", "# who hears\nnotify: [desktop, phone]\n")
    done = cli(home, "check")
    assert done.returncode == 1
    assert f"{path}:4: notify: no target 'phone' in runner.yaml (desktop)" in done.stdout


def test_an_output_path_outside_the_home_is_refused_by_check_and_at_run_time(
    home: Home,
) -> None:
    for bad, why in [
        ("../notes/{date}.md", "must stay inside the home"),
        ("/tmp/{date}.md", "not an absolute path"),
        ("logs/{date}.md", "must not write under logs/"),
        (".git/hooks/post-commit", "must not write under .git/"),
        ("plans/{when}.md", "unknown placeholder {when}"),
    ]:
        path = task(home, "plan", f"# where\noutput: '{bad}'\n")
        done = cli(home, "check")
        assert done.returncode == 1
        assert f"{path}:4: 'output' " in done.stdout and why in done.stdout, done.stdout
        run = cli(home, "run", "plan")
        assert run.returncode == 2 and f"{path}:4: 'output' " in run.stderr and why in run.stderr
    assert not (home.root.parent / "notes").exists()
    assert not (home.logs / "plan.jsonl").exists()


def test_a_hand_run_task_fills_date_stamp_series_and_task(home: Home) -> None:
    task(home, "plan", "key: planning\noutput: 'out/{date}_{stamp}_{series}_{task}.md'\n")
    done = cli(home, "run", "plan", "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    [written] = list((home.root / "out").iterdir())
    started = record["started"]  # 2026-12-02T16:43:51.788558Z
    stamp = started[:19].replace("-", "").replace(":", "") + "Z"
    assert written.name == f"{started[:10]}_{stamp}_planning_plan.md"
    assert record["output"] == f"out/{written.name}"
    assert written.read_text(encoding="utf-8") == record["response"]


def test_a_crash_between_record_and_output_is_repaired_by_the_next_command(
    home: Home,
) -> None:
    task(home, "plan", "output: 'plans/{task}.md'\n")
    out = home.root / "plans" / "plan.md"
    for point in ("executor-after-append", "executor-after-output"):
        out.unlink(missing_ok=True)
        kill_at(home, point, "run", "plan")
        assert out.exists() == (point == "executor-after-output")
        listed = cli(home, "list", "--json")  # the next command that touches the task
        assert "state repaired from its log" in listed.stderr
        rows = {t["id"]: t for t in json.loads(listed.stdout)["tasks"]}
        assert rows["plan"]["status"] == "completed"
        records = [json.loads(x) for x in (home.logs / "plan.jsonl").read_text().splitlines()]
        assert out.read_text(encoding="utf-8") == records[-1]["response"]
        assert [p.name for p in out.parent.iterdir()] == ["plan.md"]  # no temp file left
    assert len(records) == 2  # one record per run: nothing doubled
    assert [r["status"] for r in records] == ["completed", "completed"]


def test_a_missing_output_that_cannot_be_written_says_why(home: Home, tmp_path: Path) -> None:
    task(home, "plan", "output: 'plans/{task}.md'\n")
    kill_at(home, "executor-after-append", "run", "plan")
    outside = tmp_path / "outside"
    outside.mkdir()
    (home.root / "plans").symlink_to(outside)  # meanwhile the folder leads outside
    listed = cli(home, "list")
    assert "plan: output not written: output plans/plan.md: leads outside the home" in (
        listed.stderr
    )
    assert list(outside.iterdir()) == []


def test_dbus_without_its_bindings_falls_back_to_notify_send(home: Home, tmp_path: Path) -> None:
    """No dbus-python here, so Apprise cannot load dbus://: notify-send is used. The
    stand-in records its arguments (this machine has no desktop session)."""
    import apprise

    assert apprise.Apprise.instantiate("dbus://") is None, "dbus-python is installed here"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    seen = tmp_path / "seen.txt"
    fake = bin_dir / "notify-send"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {seen}\n', encoding="utf-8")
    fake.chmod(0o755)
    settings(home, "notify:\n  desktop: {url: 'dbus://'}\n")
    path = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    done = cli(home, "notify", "desktop", env=path)
    assert done.returncode == 0, done.stderr
    assert seen.read_text(encoding="utf-8").splitlines()[:2] == [
        "--app-name=runner",
        "runner: test",
    ]
    missing = cli(home, "notify", "desktop", env={"PATH": "/nonexistent"})
    assert missing.returncode == 1
    assert "notify-send (libnotify) on the PATH" in missing.stderr


def test_a_receiver_answering_an_error_is_one_warning_naming_it(
    home: Home, receiver: Receiver
) -> None:
    receiver.status = 500
    settings(home, f"notify:\n  phone: {{url: '{receiver.url()}'}}\nnotify_default: [phone]\n")
    task(home, "plan", "notify_on: [completed]\n")
    done = cli(home, "run", "plan")
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "500" in warnings[0], done.stderr
    assert len(receiver.requests) == 1  # sent once, not retried by the runner
