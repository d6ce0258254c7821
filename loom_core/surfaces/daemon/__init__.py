"""The supervisor surface (spec §4): ``loom daemon``, and one watcher per project in the HTTP plane.

Like every surface it talks to loom through :mod:`loom_core.control` only.
"""

from loom_core.surfaces.daemon.log import DaemonLog, LogSink, read_log
from loom_core.surfaces.daemon.status import DaemonStatus, read_status, stop_daemon
from loom_core.surfaces.daemon.supervisor import Supervisor

__all__ = ["DaemonLog", "LogSink", "DaemonStatus", "Supervisor", "read_log", "read_status", "stop_daemon"]
