"""Leave a command-line process with its exit code, without native teardown.

Arrow's C++ thread pools (pyarrow writes every results table) can abort the interpreter during its
final teardown, after all work is done: ``terminate called without an active exception`` turns a
successful run into exit 134 (apache/arrow#34314; seen here twice, in `s1mple variant-test` under heavy load).
For a Job that is a failed index, for a user a failed command.  Console entry points therefore flush
what they wrote and leave with ``os._exit``: Python-level cleanup (logging, stdio) is done by hand,
native static destructors never run.  Library callers (``main(argv)`` in tests) are unaffected.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable
from typing import NoReturn


def exit_process(code: int) -> NoReturn:
    """Flush logging and stdio, then end the process with ``code`` (no atexit, no native teardown)."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        # a closed pipe (| head) or a closed stream: nothing left to save
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def console(main: Callable[[], int]) -> NoReturn:
    """Run a console entry point's ``main`` and leave with its code (``SystemExit`` from argparse too)."""
    code: int | None
    try:
        code = main()
    except SystemExit as exc:  # as the interpreter does: an int is the code, anything else is printed, 1
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    exit_process(int(code or 0))
