"""The state a command gets: the home, the clock, settings loaded on first use."""

from __future__ import annotations

import click

from runner.clock import SystemClock
from runner.home import Home
from runner.settings import Settings, load_settings


class Context:
    def __init__(self, home: Home, debug: bool) -> None:
        self.home = home
        self.debug = debug
        self.clock = SystemClock()
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.home.settings_file)
        return self._settings


pass_ctx = click.make_pass_decorator(Context)
