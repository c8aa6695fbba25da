"""The command line beyond the demo: ``skdict train DATA ...`` and ``skdict evaluate MODEL DATA``.

:func:`main` runs a sub-command and turns the errors a user can fix (a bad option, an unreadable
file, a NaN row, a diverged fit) into one message on stderr and a non-zero exit status, without a
traceback unless ``--debug`` is given. The layer holds no algorithm: it opens data
(:mod:`skdict.cli._data`), calls the estimators, :mod:`skdict.io` and :mod:`skdict.plotting`.
"""

from __future__ import annotations

import sys

from skdict.cli._common import UsageError
from skdict.cli._data import DataError

#: Sub-command name -> module with ``run(argv, log)``.
COMMANDS = ("train", "evaluate")

#: Exit statuses: a failure while training or measuring, bad usage (argparse's own status), Ctrl-C (128 + SIGINT).
EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


def _log(message):
    print(message, file=sys.stderr, flush=True)


def main(argv):
    """Run ``argv[0]`` (one of :data:`COMMANDS`) with the rest of ``argv``; return the exit status."""
    from skdict.cli import _evaluate, _train

    command, rest = argv[0], list(argv[1:])
    module = {"train": _train, "evaluate": _evaluate}[command]
    try:
        return module.run(rest, _log)
    except (UsageError, DataError) as exc:
        if "--debug" in rest:
            raise
        _log(f"skdict {command}: error: {exc}")
        return EXIT_USAGE
    except (ValueError, RuntimeError, ImportError, OSError) as exc:
        if "--debug" in rest:
            raise
        _log(f"skdict {command}: error: {exc}")
        return EXIT_FAILED
    except KeyboardInterrupt as exc:  # Ctrl-C: say what is on disk, not a traceback of the thread that was waiting
        if "--debug" in rest:
            raise
        _log(f"skdict {command}: interrupted" + (f": {exc}" if str(exc) else "."))
        return EXIT_INTERRUPTED
