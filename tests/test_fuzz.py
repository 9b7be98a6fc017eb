"""Fuzzing the files a user (or a calendar) puts in a home (issue 13).

Task YAML, runner.yaml, .mcp.json and .ics, each as mutations of a valid file,
random bytes, huge values, deep nesting, UTF-16 with a BOM, NUL bytes, YAML aliases
and tags. Whatever the bytes: `check` and `list` never raise anything but the
project's own errors, every problem names its file, and the neighbour task `hello`
is still listed. The profile (tests/conftest.py) is short in `just test` and long
in `just fuzz`; cases found are kept below as regression tests.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from runner.check import check_home
from runner.home import Home
from runner.init import init_home
from runner.listing import list_tasks
from tests.fakes import FakeClock

VALID = {
    "tasks/fuzz.yaml": (
        b"title: Fuzz\ninstructions: |\n  Read the notes.\nmodel: m\nmax_tokens: 100\n"
        b"# runner state\nstatus: completed\nattempts: 1\n"
        b"started: 2026-11-26T08:00:00.000000Z\n"
    ),
    "runner.yaml": (
        b"brain:\n  provider: offline\n  max_tokens: 100\n  timeout: 30s\n"
        b"grace: 1h\ncatch_up: all\nall_day_at: '09:00'\n"
        b"compression:\n  max_tokens: 5000\n  keep_recent: 2\n"
        b"calendars:\n  - name: local\n"
    ),
    ".mcp.json": (
        b'{"mcpServers": {"time": {"command": "uvx", "args": ["mcp-server-time"],'
        b' "env": {"TZ": "${TZ}"}}}}'
    ),
    "calendars/local/e.ics": (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//fuzz//EN\r\nBEGIN:VEVENT\r\n"
        b"UID:fuzz@example.com\r\nDTSTART:20261126T080000Z\r\nDURATION:PT1H\r\n"
        b"RRULE:FREQ=DAILY;COUNT=5\r\nSUMMARY:Fuzz\r\nDESCRIPTION:task: hello\r\n"
        b"END:VEVENT\r\nEND:VCALENDAR\r\n"
    ),
}

HOSTILE = [
    b"\x00",
    b"\xff\xfe",
    b"&a [*a]",
    b"!!python/object/apply:os.system ['true']",
    b"!!binary AAAA",
    b"2026-02-30",
    b"9" * 400,
    b"[" * 2000,
    b"{a: " * 500,
    b"a: &x [" + b"*x, " * 10 + b"]",
    b"\n---\n",
    b"\n...\n",
    b"\t",
    b"\r",
    b"\\u0000",
    b"RRULE:FREQ=YEARLY;BYMONTH=13\r\n",
    b"DTSTART:99991231T235959Z\r\n",
    b"TZID:../../etc/passwd\r\n",
    b"BEGIN:VEVENT\r\n",
    b"${",
    b'"\\ud800"',
]


@st.composite
def mutated(draw: st.DrawFn, valid: bytes) -> bytes:
    """A valid file with a few cuts, insertions, byte flips or hostile pieces."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["insert", "delete", "flip", "hostile", "repeat"]))
        if kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 20))]
        elif kind == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "hostile":
            data[at:at] = draw(st.sampled_from(HOSTILE))
        elif kind == "repeat":
            data[at:at] = bytes(data[at : at + 40]) * draw(st.integers(2, 200))
    return bytes(data)


def encodings(raw: bytes) -> st.SearchStrategy[bytes]:
    text = raw.decode("utf-8", "replace")
    return st.sampled_from(
        [raw, b"\xef\xbb\xbf" + raw, text.encode("utf-16"), text.encode("utf-16-le")]
    )


def contents(name: str) -> st.SearchStrategy[bytes]:
    valid = VALID[name]
    return st.one_of(
        mutated(valid),
        st.binary(max_size=300),
        mutated(valid).flatmap(encodings),
        st.sampled_from(HOSTILE).map(lambda piece: valid + piece),
    )


def check_one(tmp: Path, name: str, data: bytes) -> None:
    home = Home(tmp / "home")
    init_home(home)
    (home.calendars / "local").mkdir(parents=True, exist_ok=True)
    for other, valid in VALID.items():  # the valid neighbours
        if other != name:
            (home.root / other).write_bytes(valid)
    target = home.root / name
    target.write_bytes(data)

    result = check_home(home, now=datetime(2026, 11, 26, 7, tzinfo=UTC))
    for problem in result.problems:
        assert problem.path and problem.message, problem
        assert "Traceback" not in problem.message
        assert Path(problem.path).is_relative_to(home.root), problem
    listed = list_tasks(home, FakeClock(datetime(2026, 11, 26, 7, tzinfo=UTC)))
    assert "hello" in [row.id for row in listed.rows]  # the neighbour is still there


FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("name", sorted(VALID))
def test_fuzz_files(tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    @FUZZ
    @given(data=contents(name))
    @example(data=VALID[name])
    def run(data: bytes) -> None:
        check_one(tmp_path_factory.mktemp("fuzz"), name, data)

    run()


# -- cases the fuzzer found, kept ----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data"),
    [
        # json.loads raises a bare ValueError for an integer of more than 4,300 digits.
        (".mcp.json", b"9" * 5000 + VALID[".mcp.json"]),
        (".mcp.json", b'{"mcpServers": {"x": {"command": "a", "args": [' + b"9" * 5000 + b"]}}}"),
        ("runner.yaml", b"grace: " + b"9" * 5000 + b"\n"),
        ("tasks/fuzz.yaml", b"instructions: x\nmax_tokens: " + b"9" * 5000 + b"\n"),
    ],
)
def test_found_cases(tmp_path: Path, name: str, data: bytes) -> None:
    check_one(tmp_path, name, data)
