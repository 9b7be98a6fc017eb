"""One module per command: each parses, calls one domain function, renders."""

from __future__ import annotations

# Command name → its module here; cli.main.RunnerGroup imports one only when used.
COMMANDS = {
    "init": "init",
    "check": "check",
    "list": "list_cmd",
    "run": "run",
    "log": "log_cmd",
    "compress": "compress",
    "sync": "sync",
    "watch": "watch",
    "tick": "tick",
    "next": "next_cmd",
    "completion": "completion",
    "service": "service",
    "notify": "notify",
}
