"""Import PyBullet without its "pybullet build time: ..." banner on standard output.

DESIGN note: only this throwaway client ever touches PyBullet's default client id; it is
disconnected at once, and every world uses its own ``p.DIRECT`` client id.

PyBullet's C module prints that line when it is first imported, which would pollute the
output of CLI commands (``sim2real envs`` piped into another program, ``--json`` output).
The banner is written with C stdio, so standard output's file descriptor is pointed at
/dev/null for the import and C's buffer is flushed before it is pointed back.
"""

from __future__ import annotations

import ctypes
import os
import sys
from types import ModuleType


def import_pybullet() -> ModuleType:
    if "pybullet" in sys.modules:
        return sys.modules["pybullet"]
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = (os.dup(1), os.dup(2))
    except (OSError, ValueError, AttributeError):  # no usable fds: nothing to protect
        import pybullet

        return pybullet
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        # Depending on the build the banner goes to stdout or stderr: silence both.
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        import pybullet

        # The banner may also be emitted on the first connection; make one here.
        client = pybullet.connect(pybullet.DIRECT)
        if client >= 0:
            pybullet.disconnect(client)
        try:
            ctypes.CDLL(None).fflush(None)  # push buffered C output out while the fds are /dev/null
        except (OSError, AttributeError):
            pass
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
        os.close(devnull)
    return pybullet


pybullet = import_pybullet()


def disconnect(client: int) -> int:
    """Disconnect PyBullet ``client`` if it is connected (a client the server already dropped is
    ignored); returns -1, the value a closed client id is set to."""
    if client >= 0:
        try:
            pybullet.disconnect(physicsClientId=client)
        except pybullet.error:
            pass
    return -1
