"""The README stays true: its settings example loads, its commands exist."""

from __future__ import annotations

import re
from pathlib import Path

from runner.settings import Settings, load_settings

from .conftest import REPO, cli

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_the_settings_example_is_valid(tmp_path: Path) -> None:
    start = README.index("## Settings (`runner.yaml`)")
    block = README[
        README.index("```yaml", start) + len("```yaml") : README.index("```\n", start + 30)
    ]
    path = tmp_path / "runner.yaml"
    path.write_text(block, encoding="utf-8")
    settings = load_settings(path)
    assert settings.calendars is not None and [c.name for c in settings.calendars] == [
        "agent",
        "local",
    ]
    assert settings.compression == Settings().compression


def test_every_command_in_the_table_exists(tmp_path: Path) -> None:
    start = README.index("## Command line")
    commands = re.findall(r"^\| `runner (\w+)", README[start:], flags=re.MULTILINE)
    assert set(commands) >= {"init", "check", "list", "next", "run", "sync", "tick", "watch"}
    for command in commands:
        result = cli(tmp_path, command, "--help")
        assert result.returncode == 0, (command, result.stderr)
        assert "Usage:" in result.stdout


def test_the_command_reference_is_the_clis_own_help() -> None:
    from runner.cli.reference import reference

    written = (REPO / "docs" / "reference.md").read_text(encoding="utf-8")
    assert written == reference(), "docs/reference.md drifted from the CLI: run `just docs`"


def test_docs_links_lead_somewhere() -> None:
    pages = sorted((REPO / "docs").glob("*.md"))
    assert {p.name for p in pages} >= {"README.md", "first-task.md", "reference.md"}
    index = (REPO / "docs" / "README.md").read_text(encoding="utf-8")
    for page in pages:
        if page.name != "README.md":
            assert f"]({page.name})" in index, f"docs/README.md does not list {page.name}"
            assert f"](docs/{page.name})" in README, f"the README does not point to {page.name}"
    for page in [REPO / "README.md", *pages]:
        for target in re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if target.startswith("../shared/"):  # the contract lives beside the repository
                continue
            resolved = (page.parent / target).resolve()
            assert resolved.exists(), f"{page.relative_to(REPO)} links to missing {target}"


def test_the_readme_stays_short() -> None:
    # The overview points to docs/ for the detail (issue 15); feature sections belong there.
    assert README.count("\n") < 400, "README.md is growing: move the detail to a docs/ page"


def test_the_code_map_has_a_row_per_package() -> None:
    # Issue 9: one line per package in the README's "Code map", a new package included.
    start = README.index("## Code map")
    rows = set(re.findall(r"^\| `(\w+)/` \|", README[start:], flags=re.MULTILINE))
    packages = {p.name for p in (REPO / "runner").iterdir() if (p / "__init__.py").is_file()}
    assert packages <= rows, f"no Code map row for {sorted(packages - rows)}"


def test_every_test_file_and_bench_script_the_docs_name_exists() -> None:
    # A conflict resolution once removed tests/test_log_tail.py and bench/bench_big_log.py
    # while the README's Guarantees still cited them: a loss the docs can show.
    named: set[str] = set()
    for page in [REPO / "README.md", *(REPO / "docs").glob("*.md")]:
        text = page.read_text(encoding="utf-8")
        named.update(f"tests/{n}" for n in re.findall(r"\b(test_\w+\.py)\b", text))
        named.update(re.findall(r"\b(bench/\w+\.py)\b", text))
    assert len(named) > 10  # the pages do cite them
    assert sorted(n for n in named if not (REPO / n).is_file()) == []
