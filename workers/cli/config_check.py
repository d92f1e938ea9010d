"""`qwenfix config check PATH`: is this config file (or this repository's) one qwenfix
will accept? The same reading the workers do, so that a mistake is found before a push.
Exit status 1 when it is not, with each problem on its own line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

config_app = typer.Typer(no_args_is_help=True, help="The repository's qwenfix config file.")


@config_app.command("check")
def check(
    path: Annotated[
        Path,
        typer.Argument(exists=True, help="a config file, or a repository directory to find it in"),
    ],
    defaults: Annotated[
        Path | None,
        typer.Option(help="the owner's defaults file (from its .github repository), merged under"),
    ] = None,
) -> None:
    """Validate a config file, or the one a repository directory has."""
    from workers.engine.repo_config import CONFIG_FILES, ConfigDefaults, RepoConfigError
    from workers.engine.repo_config import parse_repo_config as parse

    if path.is_dir():
        present = [name for name in CONFIG_FILES if (path / name).is_file()]
        if not present:
            _fail(f"{path}: no config file (looked for {', '.join(CONFIG_FILES)})", [])
        name, *ignored = present
        for other in ignored:
            typer.secho(
                f"warning: {path / other} is ignored: {name} takes precedence",
                fg="yellow",
                err=True,
            )
        file = path / name
    else:
        file = path
    try:
        base = (
            ConfigDefaults(source=str(defaults), text=defaults.read_text())
            if defaults is not None
            else None
        )
        config, data = parse(file.read_bytes(), path=str(file), defaults=base)
    except RepoConfigError as exc:
        _fail(f"{exc.source} {exc.summary}", exc.problems)
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"{file}: cannot be read ({exc})", [])
    keys = ", ".join(sorted(data)) or "none (everything detected)"
    typer.echo(f"{config.source}: ok (sets {keys})")


def _fail(headline: str, problems: list[str]) -> NoReturn:
    typer.secho(f"error: {headline}", fg="red", err=True)
    for problem in problems:
        typer.secho(f"  - {problem}", fg="red", err=True)
    raise typer.Exit(1)
