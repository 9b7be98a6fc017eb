"""Delivery from a real `runner watch`: the heartbeat pings while the watch is healthy
and `<url>/fail` on a final failure; a failed notification is a `notice` event;
the URLs from the environment never reach a file or the output."""

from __future__ import annotations

from collections.abc import Callable

from runner.home import Home
from runner.keys import series_key
from tests.fake_anthropic import FakeAnthropic
from tests.receiver import Receiver
from tests.test_deliver import everything_under
from tests.test_watch_e2e import WatchProcess, event_ics, soon, watch  # noqa: F401

SECRET = "hc-5e3c7a1f-secret"


def test_heartbeat_pings_and_a_final_failure_pings_fail_and_notifies(
    home: Home,
    watch: Callable[..., WatchProcess],  # noqa: F811
    receiver: Receiver,
    fake_anthropic: FakeAnthropic,
) -> None:
    home.settings_file.write_text(
        "brain: {provider: anthropic}\n"
        "heartbeat: {url_env: HC_URL, every: 1s}\n"
        "notify:\n  phone: {url_env: PHONE_URL, timeout: 2s}\n  gone: {url_env: GONE_URL}\n"
        "notify_default: [phone, gone]\n",
        encoding="utf-8",
    )
    fake_anthropic.fail(401, times=1)  # not worth retrying: the first failure is final
    env = {
        **fake_anthropic.env(),
        "HC_URL": receiver.http(f"/ping/{SECRET}"),
        "PHONE_URL": receiver.url(f"/notify/{SECRET}"),
        "GONE_URL": f"json://127.0.0.1:9/{SECRET}",  # nothing listens there
    }
    process = watch(env)
    pings = receiver.wait_for(2, method="GET", timeout=10)
    assert len(pings) >= 2 and all(p.path == f"/ping/{SECRET}" for p in pings)
    agent = home.calendars / "agent"
    agent.mkdir()
    (agent / "e.ics").write_text(event_ics("beat", soon(2)), encoding="utf-8")
    finished = process.wait_for("finished", timeout=20)
    assert finished["status"] == "failed" and finished["final"] is True
    notice = process.wait_for("notice", timeout=10)
    assert "notification to gone not sent" in notice["message"]
    [message] = receiver.wait_for(1, method="POST")
    assert message.body is not None and message.body["title"] == "beat: failed"
    assert "authentication failed" in message.body["message"]
    gets = receiver.wait_for(99, method="GET", timeout=3)
    assert [g.path for g in gets].count(f"/ping/{SECRET}/fail") == 1
    assert process.stop() == 0
    out, err = process.proc.communicate(timeout=10)
    assert SECRET not in out + err + "".join(str(e) for e in process.seen)
    assert SECRET not in everything_under(home.root)
    assert (home.tasks / series_key("beat")).is_dir()
