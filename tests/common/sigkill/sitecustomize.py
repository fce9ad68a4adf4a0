"""Kill a chosen program with SIGKILL in the middle of its work, deterministically (tests only).

Put this folder on ``PYTHONPATH`` (``tests.common.interrupt.sigkill_env``) and Python imports this
file at start-up in every process of a command, scripts' helpers included. In the process whose
program name is ``$SIGKILL_PROG`` (e.g. ``fairseq-train``) it wraps ``$SIGKILL_TARGET``
(``module:Class.method`` or ``module:function``) so that its ``$SIGKILL_AT``-th call (1-based) kills
the process with SIGKILL before doing anything: no handler, no ``finally`` and no checkpoint on the
way out, as when the OOM killer or a power cut ends a run.
"""
import os
import sys


def _install():
    prog, target, at = (os.environ.get(k) for k in ("SIGKILL_PROG", "SIGKILL_TARGET", "SIGKILL_AT"))
    if not (prog and target and at) or os.path.basename(sys.argv[0] if sys.argv else "") != prog:
        return
    import importlib
    import signal

    module_name, qualname = target.split(":")
    owner = importlib.import_module(module_name)
    *path, name = qualname.split(".")
    for part in path:
        owner = getattr(owner, part)
    original = getattr(owner, name)
    calls = [0]

    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] == int(at):
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)

    setattr(owner, name, wrapper)


_install()
