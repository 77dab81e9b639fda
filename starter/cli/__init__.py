"""cancelctl: start, inspect and steer cancellation sagas from a shell.

Exit codes: 0 ok; 1 Temporal or the saga refused (unreachable server, unknown
workflow, refused update); 2 bad input (the field and the rule are printed,
nothing was started).

``parser`` builds the arguments (a sub-command per saga kind of ``starter.kinds``,
whose flags and request readers are in ``starter.kind_flags``), ``runner`` validates
and runs a command, ``output`` prints the results.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from temporalio.service import RPCError

from config.codec import CodecConfigurationError
from domain.common import InvalidRequest
from starter.cli.output import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from starter.cli.parser import build_parser
from starter.cli.runner import TemporalUnreachable, run

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_OK", "entrypoint", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(run(args))
    except InvalidRequest as error:
        for problem in error.problems:
            print(f"invalid {problem.field}: {problem.rule}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (TemporalUnreachable, CodecConfigurationError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except RPCError as error:
        print(f"error: Temporal refused: {error.message}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:
        # `cancelctl list | head`: the reader left; exit quietly like other CLI tools.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def entrypoint() -> NoReturn:
    """The ``cancelctl`` console script.

    Exits with ``os._exit`` once output is flushed: the Temporal client's Rust
    threads can outlive the event loop and crash CPython's finalisation
    (temporalio/sdk-python#300), which would turn a success into exit 139.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
