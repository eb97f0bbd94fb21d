"""The `gcx` command: click commands, and one place that turns every failure into one line."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings

import click

from gcx import __version__
from gcx.cli.batch import batch
from gcx.cli.bench import bench
from gcx.cli.convert import decode_cmd, encode_cmd
from gcx.cli.generate import generate
from gcx.cli.info import codecs_cmd, info_cmd
from gcx.errors import GcxError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gcx")
def cli() -> None:
    """gcx: learned and generative media codecs in one specified container format."""


cli.add_command(encode_cmd)
cli.add_command(decode_cmd)
cli.add_command(info_cmd)
cli.add_command(codecs_cmd)
cli.add_command(batch)
cli.add_command(bench)
cli.add_command(generate)


def _fail(message: str, code: int) -> int:
    click.echo(f"gcx: error: {message}", err=True)
    return code


def run(args: list[str] | None = None) -> int:
    """Run the CLI and return its exit status; user errors become `gcx: error: ...` on stderr."""
    warnings.formatwarning = lambda message, *_args, **_kw: f"gcx: warning: {message}\n"
    try:
        result = cli.main(args=args, prog_name="gcx", standalone_mode=False)
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        return _fail(exc.format_message() + hint, EXIT_USAGE)
    except click.ClickException as exc:
        return _fail(exc.format_message(), exc.exit_code or EXIT_ERROR)
    except (click.Abort, KeyboardInterrupt):
        return _fail("interrupted", EXIT_INTERRUPTED)
    except GcxError as exc:
        return _fail(str(exc), EXIT_ERROR)
    except FileNotFoundError as exc:
        return _fail(f"no such file: {exc.filename}", EXIT_ERROR)
    except (PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        return _fail(f"{exc.strerror}: {exc.filename}", EXIT_ERROR)
    except BrokenPipeError:
        return EXIT_ERROR
    except OSError as exc:
        return _fail(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""), EXIT_ERROR)
    except Exception as exc:
        if os.environ.get("GCX_DEBUG"):
            raise
        return _fail(f"internal error: {type(exc).__name__}: {exc} (GCX_DEBUG=1 shows a traceback)", EXIT_INTERNAL)
    return result if isinstance(result, int) else 0


def main() -> None:
    """Console-script entry point."""
    code = run()
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.flush()
    sys.exit(code)
