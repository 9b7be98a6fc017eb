"""A secret fetched by a command from runner.yaml (`password_cmd`, `url_cmd`).

One way to run it for every setting that names one: through the shell, with a time
limit, its output never shown in a message (it may hold the secret).
"""

from __future__ import annotations

import subprocess


class SecretCommandError(Exception):
    """The command failed; the message names the setting, never its output."""


def run_secret_command(command: str, setting: str, what: str, timeout: float) -> str:
    """What `command` printed, stripped; `setting` and `what` name it in errors."""
    try:
        done = subprocess.run(
            command, shell=True, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise SecretCommandError(f"{setting} did not finish within {timeout:g}s") from None
    except OSError as exc:
        raise SecretCommandError(f"{setting} could not start: {exc.strerror}") from None
    if done.returncode != 0:
        raise SecretCommandError(f"{setting} failed with exit status {done.returncode}")
    value = done.stdout.strip()
    if not value:
        raise SecretCommandError(f"{setting} printed no {what}")
    return value
