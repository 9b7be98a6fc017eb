"""A server that never answers `initialize`, for the start timeout.

Default: reads stdin and never answers (exits when stdin closes). `--stubborn`:
ignores stdin and SIGTERM, so only the SIGKILL of the shutdown escalation stops it.
`--child`: also starts a grandchild that outlives the server unless it is killed.
`--pidfile PATH` writes the pid (and the grandchild's, one a line).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pidfile")
    parser.add_argument("--stubborn", action="store_true")
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    pids = [os.getpid()]
    if args.child:
        code = "import time; time.sleep(120)"
        child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL)
        pids.append(child.pid)
    if args.pidfile:
        Path(args.pidfile).write_text("\n".join(map(str, pids)))
    if args.stubborn:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(120)
    for _line in sys.stdin:
        pass


if __name__ == "__main__":
    main()
