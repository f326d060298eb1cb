"""This process's id, asked without a system call.

glibc asks the kernel on every `os.getpid()`, and a request asked it several times over (the
log writer, the fleet's listener, the body reaper, every metric it counted: each checks it has
not been forked since). Kept here and renewed in a forked child instead.
"""

from __future__ import annotations

import os

_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


def pid() -> int:
    return _pid
