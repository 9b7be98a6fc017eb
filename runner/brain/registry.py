"""Which brain a home uses: the provider registry.

Providers are named here once; settings validation and `make_brain` both read this
table. A provider's module is imported only when it is chosen, so `list` and
`check` never pay for an SDK.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from runner.brain.protocol import Brain
from runner.errors import UsageError
from runner.settings import BrainSettings


def choose_provider(settings: BrainSettings, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    if settings.provider == "auto":
        return "anthropic" if env.get("ANTHROPIC_API_KEY") else "offline"
    return settings.provider


def make_brain(settings: BrainSettings, environ: Mapping[str, str] | None = None) -> Brain:
    provider = choose_provider(settings, environ)
    if provider == "offline":
        from runner.brain.offline import OfflineBrain

        return OfflineBrain()
    if provider == "anthropic":
        try:
            from runner.brain.anthropic_brain import AnthropicBrain
        except ImportError as exc:
            raise UsageError(f"the anthropic brain cannot be loaded: {exc}") from None
        return AnthropicBrain(settings)
    raise UsageError(f"unknown brain provider {provider!r}")
