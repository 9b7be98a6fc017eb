"""The brain providers, named once.

This is the table; `runner.brain.registry` builds a Brain from it and settings
validation reads its names for `brain.provider`. It lives in the shared base (not in
brain/) because settings, which every layer reads, must know the names without
importing any brain: a provider's module is named here as text and imported only
when it is chosen, so `list` and `check` never pay for an SDK.

Adding a provider is one entry here plus its module (a class taking BrainSettings).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Provider:
    name: str
    module: str  # the module that defines the Brain class
    factory: str  # the class (or function) in it: factory(BrainSettings) -> Brain
    help: str
    # `auto` picks the first provider whose variable is set; the one without is the fallback.
    auto_env: str | None = None
    # An optional package the provider needs (`check` says so when it is missing), and
    # the extra that installs it.
    package: str | None = None
    extra: str | None = None
    takes_home: bool = False  # factory(BrainSettings, home): it works in the home folder

    def missing(self) -> str | None:
        """Why this provider cannot load, without importing its package; None if it can."""
        if self.package is None or importlib.util.find_spec(self.package) is not None:
            return None
        install = f": pip install 'calendar-agent-runner[{self.extra}]'" if self.extra else ""
        return (
            f"brain.provider is {self.name}, "
            f"but the {self.package.replace('_', '-')} package is not installed{install}"
        )


PROVIDERS: tuple[Provider, ...] = (
    Provider(
        "anthropic",
        "runner.brain.anthropic_brain",
        "AnthropicBrain",
        "the Messages API through the official SDK",
        auto_env="ANTHROPIC_API_KEY",
    ),
    Provider(
        "offline",
        "runner.brain.offline",
        "OfflineBrain",
        "no network: reports the context a model would get",
    ),
    # Never chosen by `auto`: it is after the fallback and has no auto_env.
    Provider(
        "claude-code",
        "runner.brain.claude_code",
        "ClaudeCodeBrain",
        "Claude Code's agent through the Claude Agent SDK; works with a Claude Code login",
        package="claude_agent_sdk",
        extra="claude-code",
        takes_home=True,
    ),
)

AUTO = "auto"


def provider_names() -> tuple[str, ...]:
    return tuple(p.name for p in PROVIDERS)


def provider_named(name: str) -> Provider | None:
    return next((p for p in PROVIDERS if p.name == name), None)


def resolve_provider(choice: str, environ: Mapping[str, str]) -> str:
    """The provider `choice` means: itself, or for `auto` the first whose key is set."""
    if choice != AUTO:
        return choice
    for provider in PROVIDERS:
        if provider.auto_env and environ.get(provider.auto_env):
            return provider.name
    return next(p.name for p in PROVIDERS if p.auto_env is None)


def auto_help() -> str:
    keyed = [f"{p.name} when {p.auto_env} is set" for p in PROVIDERS if p.auto_env]
    fallback = next(p.name for p in PROVIDERS if p.auto_env is None)
    return f"auto: {', '.join(keyed)}, else {fallback}"
