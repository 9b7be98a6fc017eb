"""A run's toolset: the providers its grants open, behind one name → provider table.

`open_toolset` starts what the grants name: the built-in file tools for `read:` and
`write:` globs, and the MCP servers for `mcp:` (runner/tools/mcp.py, imported only
then, so a run without MCP grants never loads the `mcp` SDK). The caller closes the
toolset when the run ends, which stops the servers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runner.home import Home
from runner.tasks.grants import ToolGrants
from runner.tools.base import ToolOutput, ToolProvider, ToolSpec
from runner.tools.files import DEFAULT_CAP, FileTools, cap_text

MCP_START_TIMEOUT = 30.0  # seconds for the servers of one run to start


class Toolset:
    """Several providers as one; a name the model invents is an error result."""

    def __init__(self, providers: Sequence[ToolProvider], cap: int = DEFAULT_CAP) -> None:
        self.providers = list(providers)
        self.cap = cap
        self.closed = False
        self._by_name: dict[str, ToolProvider] = {}
        self._specs: list[ToolSpec] = []
        for provider in self.providers:
            for spec in provider.specs():
                if spec.name not in self._by_name:
                    self._by_name[spec.name] = provider
                    self._specs.append(spec)

    def specs(self) -> list[ToolSpec]:
        return list(self._specs)

    def call(self, name: str, arguments: dict[str, Any]) -> ToolOutput:
        if self.closed:
            # A loop left running in an abandoned thread (a watch shutting down cancels
            # the wait, not the thread) must not act after its run was recorded.
            return ToolOutput("the run has ended; no tool can be called", is_error=True)
        provider = self._by_name.get(name)
        if provider is None:
            return ToolOutput(f"no tool named {name!r} is offered in this run", is_error=True)
        out = provider.call(name, arguments)
        # A provider's own cap may differ (an MCP server's output): cap it here too.
        return ToolOutput(cap_text(out.text, self.cap), out.is_error)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for provider in reversed(self.providers):
            provider.close()

    def __enter__(self) -> Toolset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_toolset(home: Home, grants: ToolGrants, timeout: float = MCP_START_TIMEOUT) -> Toolset:
    """The providers `grants` name, started; raises ToolStartError naming a server."""
    providers: list[ToolProvider] = []
    if grants.read or grants.write:
        providers.append(FileTools(home.root, grants))
    if grants.mcp:
        providers.append(_open_mcp(home, grants.mcp, timeout))
    return Toolset(providers)


def _open_mcp(home: Home, names: Sequence[str], timeout: float) -> ToolProvider:
    # Imported here: only a run that names a server pays for the MCP machinery (and
    # runner/tools/mcp.py imports the `mcp` SDK only when it starts a server).
    from runner.tools.mcp import open_mcp

    return open_mcp(home, names, timeout)
