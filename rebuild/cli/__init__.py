"""The command line: parse arguments, call one library function, format the result, pick the exit code.

``main`` holds the group and catches every expected error once; the commands live by area:
``build`` (build, demo, key, init, fetch, patch, targets, vercmp), ``plans`` (plan, floors suggest),
``roots`` (image, check-deps),
``results`` (publish, verify), ``evidence`` (diff, verify-provenance), ``mail`` (audit-mc, probe-smtp),
``host`` (doctor, shell).

SIGTERM is an interrupt from the first moment the command line loads (before its modules do), and an
interrupt while they load is exit 130 with one line, as it is later: nothing has been made yet.
"""

import signal
import sys
import threading


def _on_sigterm_while_starting(signum, frame):
    # SystemExit, not KeyboardInterrupt: one raised while a module builds a class (inside exec()) would be
    # re-raised by CPython 3.11 as death by SIGINT; nothing has been made yet, so there is nothing to undo
    print("rebuild: interrupted while starting; nothing was made", file=sys.stderr)
    raise SystemExit(130)


if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, _on_sigterm_while_starting)  # main() sets its own once the commands load
try:
    from rebuild.cli import build, evidence, host, mail, plans, results, roots  # noqa: F401 - each registers its commands
    from rebuild.cli.main import cli, main
except KeyboardInterrupt:
    print("rebuild: interrupted while starting; nothing was made", file=sys.stderr)
    raise SystemExit(130) from None

__all__ = ["cli", "main"]
