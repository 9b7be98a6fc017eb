"""Pause points for crash tests.

Tests set RUNNER_TEST_PAUSE=<name> and SIGKILL the process once it prints
`PAUSED <name>` on stderr, to prove a crash at that exact step loses nothing.
Unset (always, outside tests), a pause point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import sys
import time


def pause_point(name: str) -> None:
    if os.environ.get("RUNNER_TEST_PAUSE") != name:
        return
    sys.stderr.write(f"PAUSED {name}\n")
    sys.stderr.flush()
    time.sleep(3600)
