"""The built-in file tools on real files: grants, refused paths, caps, atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runner.home import Home
from runner.tasks.grants import ToolGrants
from runner.tools.files import MAX_READ, FileTools
from runner.tools.paths import glob_matches
from runner.tools.toolset import open_toolset


@pytest.fixture
def tools(home: Home) -> FileTools:
    (home.root / "notes").mkdir()
    (home.root / "notes" / "inbox.md").write_text("buy milk\ncall Ana\nfix the bike\n")
    (home.root / "notes" / "deep").mkdir()
    (home.root / "notes" / "deep" / "x.txt").write_text("deep milk\n")
    (home.root / "secret.txt").write_text("not granted\n")
    return FileTools(home.root, ToolGrants(read=("notes/**",), write=("plans/**",)))


def test_offers_only_what_the_grants_allow(home: Home) -> None:
    def names(g: ToolGrants) -> list[str]:
        return [s.name for s in FileTools(home.root, g).specs()]

    assert names(ToolGrants()) == []
    assert names(ToolGrants(read=("notes/**",))) == ["read_file", "list_files", "search_files"]
    assert names(ToolGrants(write=("plans/**",))) == [
        "read_file",
        "list_files",
        "search_files",
        "write_file",
        "edit_file",
    ]


def test_read_with_offset_and_limit(tools: FileTools) -> None:
    assert tools.call("read_file", {"path": "notes/inbox.md"}).text == (
        "buy milk\ncall Ana\nfix the bike\n"
    )
    out = tools.call("read_file", {"path": "notes/inbox.md", "offset": 2, "limit": 1})
    assert (out.text, out.is_error) == ("call Ana\n", False)


def test_list_and_search(tools: FileTools) -> None:
    listed = tools.call("list_files", {"glob": "notes/**"})
    assert listed.text.splitlines() == ["notes/deep/x.txt", "notes/inbox.md"]
    assert tools.call("list_files", {"glob": "*"}).text.startswith("no readable files")
    found = tools.call("search_files", {"pattern": "mi.k"})
    assert found.text.splitlines() == [
        "notes/deep/x.txt:1: deep milk",
        "notes/inbox.md:1: buy milk",
    ]
    bad = tools.call("search_files", {"pattern": "("})
    assert bad.is_error and "not a regular expression" in bad.text


def test_write_creates_folders_and_edit_needs_a_unique_match(home: Home, tools: FileTools) -> None:
    out = tools.call("write_file", {"path": "plans/2026/a.md", "content": "one\ntwo\ntwo\n"})
    assert not out.is_error, out.text
    target = home.root / "plans" / "2026" / "a.md"
    assert target.read_text() == "one\ntwo\ntwo\n"
    assert not [p for p in target.parent.iterdir() if p.name.endswith(".tmp")]
    twice = tools.call("edit_file", {"path": "plans/2026/a.md", "old": "two", "new": "2"})
    assert twice.is_error and "found 2 times" in twice.text
    missing = tools.call("edit_file", {"path": "plans/2026/a.md", "old": "three", "new": "3"})
    assert missing.is_error and "not found" in missing.text
    ok = tools.call("edit_file", {"path": "plans/2026/a.md", "old": "one", "new": "1"})
    assert not ok.is_error
    assert target.read_text() == "1\ntwo\ntwo\n"
    # Reading is implied by write, writing is not implied by read.
    assert tools.call("read_file", {"path": "plans/2026/a.md"}).text == "1\ntwo\ntwo\n"
    denied = tools.call("write_file", {"path": "notes/inbox.md", "content": "x"})
    assert denied.is_error and "not granted to write" in denied.text
    assert (home.root / "notes" / "inbox.md").read_text().startswith("buy milk")


@pytest.mark.parametrize(
    "path, why",
    [
        ("../x", "'..' is refused"),
        ("notes/../../x", "'..' is refused"),
        ("/etc/passwd", "absolute paths are refused"),
        ("~/x", "absolute paths are refused"),
        (".git/config", "never open to tools"),
        ("logs/x.jsonl", "never open to tools"),
        (".runner/locks/x.lock", "never open to tools"),
        ("secret.txt", "not granted to"),
        ("", "non-empty"),
    ],
)
def test_refused_paths_are_error_results(tools: FileTools, path: str, why: str) -> None:
    for name, args in (
        ("read_file", {"path": path}),
        ("write_file", {"path": path, "content": "pwned"}),
        ("edit_file", {"path": path, "old": "a", "new": "b"}),
    ):
        out = tools.call(name, args)
        assert out.is_error, (name, path)
        assert why in out.text, out.text


def test_symlinks_are_judged_by_where_they_lead(home: Home, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("outside\n")
    (home.root / "notes").mkdir()
    (home.root / "logs").mkdir(exist_ok=True)
    (home.root / "logs" / "x.jsonl").write_text("{}\n")
    os.symlink(outside, home.root / "notes" / "out.md")
    os.symlink(home.root / "logs", home.root / "notes" / "logs")
    os.symlink(home.root / ".git", home.root / "plans")
    tools = FileTools(home.root, ToolGrants(read=("notes/**",), write=("notes/**", "plans/**")))
    out = tools.call("read_file", {"path": "notes/out.md"})
    assert out.is_error and "outside the home" in out.text
    out = tools.call("write_file", {"path": "notes/out.md", "content": "pwned"})
    assert out.is_error and outside.read_text() == "outside\n"
    out = tools.call("read_file", {"path": "notes/logs/x.jsonl"})
    assert out.is_error and "never open to tools" in out.text
    out = tools.call("write_file", {"path": "plans/config", "content": "pwned"})
    assert out.is_error and "never open to tools" in out.text
    assert "out.md" not in tools.call("list_files", {"glob": "notes/**"}).text
    assert "x.jsonl" not in tools.call("search_files", {"pattern": "."}).text


def test_results_are_capped_and_the_cut_said(home: Home) -> None:
    (home.root / "notes").mkdir()
    (home.root / "notes" / "big.txt").write_text("é" * 3000)  # 6000 bytes
    tools = FileTools(home.root, ToolGrants(read=("notes/**",)), cap=1000)
    out = tools.call("read_file", {"path": "notes/big.txt"})
    assert not out.is_error
    assert out.text.startswith("é" * 400)
    assert "[cut: the result was 6,000 bytes; the first 9" in out.text
    assert len(out.text.encode()) <= 1000


def test_bad_arguments_are_error_results(tools: FileTools) -> None:
    assert tools.call("read_file", {"path": 3}).is_error
    assert tools.call("read_file", {"path": "notes/inbox.md", "offset": 0}).is_error
    assert tools.call("read_file", {"path": "notes"}).is_error
    assert tools.call("read_file", {"path": "notes/none.md"}).is_error
    assert tools.call("write_file", {"path": "plans/a.md"}).is_error
    assert tools.call("nope", {}).is_error


@pytest.mark.parametrize(
    "glob, rel, hit",
    [
        ("notes/**", "notes/a.md", True),
        ("notes/**", "notes/a/b.md", True),
        ("notes/**", "notesx/a.md", False),
        ("notes/*.md", "notes/a/b.md", False),
        ("**/*.md", "a.md", True),
        ("**/*.md", "x/y/a.md", True),
        ("plans/", "plans/a.md", True),
        ("./plans/*", "plans/a.md", True),
        ("p?ans/[ab].md", "plans/a.md", True),
        ("p?ans/[!ab].md", "plans/a.md", False),
    ],
)
def test_globs(glob: str, rel: str, hit: bool) -> None:
    assert glob_matches(glob, rel) is hit


def test_a_fifo_or_a_huge_file_is_an_error_not_a_hang(home: Home) -> None:
    (home.root / "notes").mkdir()
    os.mkfifo(home.root / "notes" / "pipe")  # reading it would block forever
    with (home.root / "notes" / "huge.txt").open("wb") as handle:
        handle.truncate(MAX_READ + 1)  # sparse: costs no disk
    tools = FileTools(home.root, ToolGrants(read=("notes/**",), write=("notes/**",)))
    out = tools.call("read_file", {"path": "notes/pipe"})
    assert out.is_error and "not a regular file" in out.text
    out = tools.call("edit_file", {"path": "notes/pipe", "old": "a", "new": "b"})
    assert out.is_error and "not a regular file" in out.text
    out = tools.call("read_file", {"path": "notes/huge.txt"})
    assert out.is_error and "too large" in out.text
    assert "pipe" not in tools.call("list_files", {"glob": "notes/**"}).text
    assert tools.call("search_files", {"pattern": "x"}).text.startswith("no match")


def test_a_closed_toolset_acts_no_more(home: Home) -> None:
    toolset = open_toolset(home, ToolGrants(write=("plans/**",)))
    assert not toolset.call("write_file", {"path": "plans/a.md", "content": "1"}).is_error
    toolset.close()
    toolset.close()  # twice is fine
    out = toolset.call("write_file", {"path": "plans/b.md", "content": "2"})
    assert out.is_error and "the run has ended" in out.text
    assert not (home.root / "plans" / "b.md").exists()


@pytest.mark.parametrize(
    "target", ["tasks/escalate.yaml", "runner.yaml", ".mcp.json", "tasks/s/x.yaml"]
)
def test_a_wildcard_write_grant_never_reaches_the_files_that_grant(home: Home, target: str) -> None:
    # A prompt-injected model with `write: ["**"]` must not rewrite its own grants,
    # mark a calendar trusted, or change the command an MCP server runs.
    (home.root / "tasks" / "s").mkdir(parents=True, exist_ok=True)
    (home.root / "runner.yaml").write_text("retries: 2\n")
    before = {
        p: p.read_bytes() for p in home.root.rglob("*") if p.is_file() and ".git" not in p.parts
    }
    tools = FileTools(home.root, ToolGrants(read=("**",), write=("**", "*.yaml", "*/*.yaml")))
    out = tools.call("write_file", {"path": target, "content": "tools: {write: ['**']}\n"})
    assert out.is_error and "names it" in out.text, out.text
    assert (
        not (home.root / target).exists()
        or (home.root / target).read_bytes() == before[home.root / target]
    )
    assert (
        "retries: 2" in tools.call("read_file", {"path": "runner.yaml"}).text
    )  # reading stays open


def test_a_write_grant_that_names_tasks_may_write_them(home: Home) -> None:
    tools = FileTools(home.root, ToolGrants(read=(), write=("tasks/**", "./runner.yaml")))
    assert not tools.call(
        "write_file", {"path": "tasks/new.yaml", "content": "title: x\n"}
    ).is_error
    assert not tools.call("write_file", {"path": "runner.yaml", "content": "retries: 1\n"}).is_error
    assert tools.call("write_file", {"path": ".mcp.json", "content": "{}"}).is_error


@pytest.mark.parametrize("path", ["Logs/x.jsonl", ".RUNNER/x", "notes/.GIT/config"])
def test_forbidden_folders_are_caught_in_any_case(home: Home, path: str) -> None:
    # On a case-insensitive disk (macOS) these are logs/, .runner/ and .git/.
    tools = FileTools(home.root, ToolGrants(read=("**",), write=("**",)))
    out = tools.call("write_file", {"path": path, "content": "x"})
    assert out.is_error and "never open to tools" in out.text
