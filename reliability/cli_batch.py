"""``python -m reliability.cli_batch``: many ``cancelctl`` invocations in one process.

Starting a Python process per invocation costs about half a second of CPU, too much
for hundreds of generated inputs on two cores. This runs ``starter.cli.main`` — what
the ``cancelctl`` console script runs — once per JSON line on stdin (``{"argv":
[...]}``), with stdout and stderr captured, and answers one JSON line per input:
``{"code", "out", "err", "traceback"}``. An exception escaping ``main`` is exactly
what the console script would show the user as a traceback: it is answered with
``traceback: true`` and the formatted traceback in ``err``, never raised here.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import traceback
from typing import Any

from starter.cli import main as cancelctl


def run(argv: list[str]) -> dict[str, Any]:
    out, err = io.StringIO(), io.StringIO()
    escaped = False
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cancelctl(argv)
        except SystemExit as exit_:  # argparse: usage errors exit 2, --help 0
            code = exit_.code if isinstance(exit_.code, int) else 1
        except BaseException:
            escaped = True
            code = 1
            err.write(traceback.format_exc())
    return {"code": code, "out": out.getvalue(), "err": err.getvalue(), "traceback": escaped}


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        answer = run(json.loads(line)["argv"])
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    sys.stdout.flush()
    # The Temporal client's Rust threads can outlive the loops (temporalio/sdk-python#300).
    os._exit(0)


if __name__ == "__main__":
    main()
