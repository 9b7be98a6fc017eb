"""MCP start time: `open_mcp` on the published mcp-server-time, from the call until
its tools are listed (spawn, initialize, tools/list), median over several starts.

Also: the time `close()` takes (the server exits when its stdin closes), and the
one-time cost of importing the `mcp` SDK in the runner, paid only by a run that
names a server. The server is started as `python -m mcp_server_time`, so no network.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import PY, machine
from runner.home import Home
from runner.tools.mcp import open_mcp

ROUNDS = 9


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Home(Path(tmp))
        config = {"mcpServers": {"time": {"command": PY, "args": ["-m", "mcp_server_time"]}}}
        (home.root / ".mcp.json").write_text(json.dumps(config))
        starts: list[float] = []
        closes: list[float] = []
        for i in range(ROUNDS + 1):  # the first round warms the page cache and .pyc files
            began = time.perf_counter()
            tools = open_mcp(home, ["time"], timeout=60)
            listed = time.perf_counter()
            assert len(tools.specs()) == 2, tools.specs()
            tools.close()
            closed = time.perf_counter()
            if i:
                starts.append(listed - began)
                closes.append(closed - listed)
    imports = []
    for _ in range(5):
        began = time.perf_counter()
        subprocess.run([PY, "-c", "import runner.tools.mcp, mcp"], check=True)
        imports.append(time.perf_counter() - began)
    bare = []
    for _ in range(5):
        began = time.perf_counter()
        subprocess.run([PY, "-c", "import runner.tools.mcp"], check=True)
        bare.append(time.perf_counter() - began)
    print(f"machine: {machine()}")
    print(
        f"mcp-server-time start → tools listed: median {statistics.median(starts):.3f} s, "
        f"min {min(starts):.3f} s, max {max(starts):.3f} s ({ROUNDS} starts)"
    )
    print(f"close (server stopped, process reaped): median {statistics.median(closes):.3f} s")
    extra = statistics.median(imports) - statistics.median(bare)
    print(f"importing the mcp SDK in the runner (once per process): {extra:.3f} s")


if __name__ == "__main__":
    main()
