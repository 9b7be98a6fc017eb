"""The brain providers, named once.

This is the table; `runner.brain.registry` builds a Brain from it and settings
validation reads its names for `brain.provider`. It lives in the shared base (not in
brain/) because settings, which every layer reads, must know the names without
importing any brain: a provider's module is named here as text and imported only
when it is chosen, so `list` and `check` never pay for an SDK.

Adding a provider is one entry here plus its module (a class taking BrainSettings).
"""

from __future__ import annotations

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
