"""Which brain a home uses: a Brain built from the provider table.

The providers are named once, in runner/providers.py (settings validation reads the
same table). A provider's module is imported only when it is chosen, so `list` and
`check` never pay for an SDK.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from runner.brain.protocol import Brain
from runner.errors import UsageError
from runner.providers import provider_named, resolve_provider
from runner.settings import BrainSettings


def choose_provider(settings: BrainSettings, environ: Mapping[str, str] | None = None) -> str:
    return resolve_provider(settings.provider, os.environ if environ is None else environ)


def make_brain(
    settings: BrainSettings, environ: Mapping[str, str] | None = None, home: Path | None = None
) -> Brain:
    """The chosen brain; `home` is the working folder of a brain that works in one."""
    name = choose_provider(settings, environ)
    provider = provider_named(name)
    if provider is None:
        raise UsageError(f"unknown brain provider {name!r}")
    if missing := provider.missing():
        raise UsageError(missing)
    try:
        module = importlib.import_module(provider.module)
    except ImportError as exc:
        raise UsageError(f"the {name} brain cannot be loaded: {exc}") from None
    if provider.takes_home:
        in_home: Callable[[BrainSettings, Path], Brain] = getattr(module, provider.factory)
        return in_home(settings, home or Path.cwd())
    factory: Callable[[BrainSettings], Brain] = getattr(module, provider.factory)
    return factory(settings)
