"""The `potluck` command line: thin commands over `FeatureStore`."""

from __future__ import annotations

import logging
import sys
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from potluck.store import FeatureStore


# The feature_store.yaml to use when -f/--feature-store-yaml is not given (first one set wins).
FS_YAML_ENV = ("POTLUCK_FS_YAML_FILE_PATH", "FEAST_FS_YAML_FILE_PATH")
REPO_DIR_ENV = "FEATURE_REPO_DIR_ENV_VAR"  # the repository folder when -c/--chdir is not given
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
log = logging.getLogger("potluck.cli")


class Context:
    def __init__(self, chdir: str | None, fs_yaml: str | None, verbose: bool) -> None:
        self.repo_path = Path(chdir) if chdir else Path.cwd()
        self.fs_yaml = fs_yaml
        self.verbose = verbose
        self._store: FeatureStore | None = None

    @property
    def store(self) -> FeatureStore:
        if self._store is None:
            from potluck.store import FeatureStore

            log.info("repository %s, feature_store.yaml %s", self.repo_path, self.fs_yaml or "(in the repository)")
            self._store = FeatureStore(repo_path=self.repo_path, fs_yaml_file=self.fs_yaml)
        return self._store


def _log_level(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    level = value.upper()
    if level not in LOG_LEVELS:
        raise click.BadParameter(f"'{value}' is not one of {', '.join(LOG_LEVELS)} (any case)")
    return level


def _configure_logging(level: str) -> None:
    """Log records of Potluck at `level` and above to stderr (only when --log-level is given)."""
    logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s: %(message)s", level=level)
    logging.getLogger("potluck").setLevel(level)


pass_ctx = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--chdir",
    "-c",
    type=click.Path(file_okay=False),
    envvar=REPO_DIR_ENV,
    help=f"Run in this feature repository (or ${REPO_DIR_ENV}).",
)
@click.option(
    "--feature-store-yaml",
    "-f",
    type=click.Path(dir_okay=False),
    envvar=list(FS_YAML_ENV),
    help=f"Use this feature_store.yaml (or ${FS_YAML_ENV[0]}, ${FS_YAML_ENV[1]}).",
)
@click.option(
    "--log-level",
    default="WARNING",
    callback=_log_level,
    help="Logging level: DEBUG, INFO, WARNING, ERROR or CRITICAL (any case).",
)
@click.option("--verbose", "-v", is_flag=True, help="Show tracebacks on errors.")
@click.version_option(package_name="potluck", message="potluck %(version)s")
@click.pass_context
def cli(ctx: click.Context, chdir: str | None, feature_store_yaml: str | None, log_level: str, verbose: bool) -> None:
    """Potluck: a feature store for machine learning."""
    if ctx.get_parameter_source("log_level") is not click.core.ParameterSource.DEFAULT:
        _configure_logging(log_level)
    ctx.obj = Context(chdir, feature_store_yaml, verbose)


def main(argv: list[str] | None = None) -> None:
    from potluck.cli import commands  # noqa: F401  (registers the commands)

    verbose = _global_verbose(argv if argv is not None else sys.argv[1:])
    try:
        with _warnings_as_lines():
            cli.main(args=argv, prog_name="potluck", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except Exception as err:  # every error ends as one line unless --verbose
        _report(err, verbose)
        sys.exit(1)


@contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """Potluck's warnings as one `Warning: ...` line on stderr, each shown once; others as Python shows them."""
    from potluck.definitions.errors import PotluckWarning

    with warnings.catch_warnings():
        warnings.simplefilter("default", PotluckWarning)
        shown = warnings.showwarning

        def show(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
            if issubclass(category, PotluckWarning):
                click.secho(f"Warning: {message}", fg="yellow", err=True)
            else:
                shown(message, category, *args, **kwargs)

        warnings.showwarning = show
        yield


def _global_verbose(args: list[str]) -> bool:
    """Whether -v/--verbose was given before the command name (later, -v may mean --views)."""
    takes_value = {"--chdir", "-c", "--feature-store-yaml", "-f", "--log-level"}
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in ("-v", "--verbose"):
            return True
        if arg in takes_value:
            skip = True
            continue
        if not arg.startswith("-"):
            return False
    return False


def _report(err: BaseException, verbose: bool) -> None:
    from potluck.definitions.errors import PotluckError

    if verbose:
        traceback.print_exception(err)
    message = str(err).strip() or type(err).__name__
    if not isinstance(err, PotluckError):
        message = f"{type(err).__name__}: {message}"
    first = message.splitlines()[0] if not verbose else message
    click.secho(f"Error: {first}", fg="red", err=True)


def output_option(func: Any) -> Any:
    return click.option(
        "--output", "-o", "output", type=click.Choice(["table", "json"]), default="table", help="Output format."
    )(func)
