# The two commands: `just run` and `just test`. Both create and reuse .venv.
set shell := ["bash", "-euo", "pipefail", "-c"]

venv := ".venv"
py := venv / "bin/python"
stamp := venv / ".installed"

# Run the main job on the example home in this repository.
run *ARGS: _venv
    {{venv}}/bin/runner --home . watch {{ARGS}}

# ruff, mypy and the whole test suite.
test *ARGS: _venv lint
    {{py}} -m pytest {{ARGS}}

lint: _venv
    {{venv}}/bin/ruff check runner tests bench
    {{venv}}/bin/ruff format --check runner tests bench
    {{venv}}/bin/mypy

# Format the code in place.
fmt: _venv
    {{venv}}/bin/ruff format runner tests bench
    {{venv}}/bin/ruff check --fix runner tests bench

# Regenerate docs/reference.md and runner/schemas/ (tests fail when they drift).
docs: _venv
    {{py}} -m runner.cli.reference > docs/reference.md
    {{py}} -m runner.schema

# Benchmarks: scripts that print figures.
bench: _venv
    for f in bench/bench_*.py; do echo "== $f"; {{py}} "$f"; done

# Create .venv once; reinstall only when pyproject.toml changes.
_venv:
    #!/usr/bin/env bash
    set -euo pipefail
    if [ ! -x {{py}} ]; then python3 -m venv {{venv}}; fi
    if [ ! -f {{stamp}} ] || [ pyproject.toml -nt {{stamp}} ]; then
        {{py}} -m pip install -q --upgrade pip >&2
        {{py}} -m pip install -q -e '.[dev]' >&2
        touch {{stamp}}
    fi

# The long fuzz profile (hypothesis, minutes): hostile task, settings, .mcp.json, .ics files.
fuzz: _venv
    HYPOTHESIS_PROFILE=fuzz {{py}} -m pytest -q tests/test_fuzz.py tests/test_task_marker.py

# Random SIGKILLs of tick, run, compress and watch, then every invariant checked.
soak SECONDS="1800": _venv
    {{py}} bench/soak.py --seconds {{SECONDS}}
