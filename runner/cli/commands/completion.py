from __future__ import annotations

import click
from click.shell_completion import get_completion_class


@click.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def command(shell: str) -> None:
    """Print the shell completion script (task ids, series keys, targets).

    \b
    bash: eval "$(runner completion bash)"        (in ~/.bashrc)
    zsh:  eval "$(runner completion zsh)"         (in ~/.zshrc)
    fish: runner completion fish > ~/.config/fish/completions/runner.fish
    """
    root = click.get_current_context().find_root().command
    completion = get_completion_class(shell)
    assert completion is not None  # every choice above has a class in click
    click.echo(completion(root, {}, "runner", "_RUNNER_COMPLETE").source())
