"""The SDK worker process of the local multi-process runner.

Beam's local runner starts each worker as ``python -m
apache_beam.runners.worker.sdk_worker_main`` (``FnApiRunner``, ``direct_running_mode
= multi_processing``); :class:`beam_jobs.classify_images.LocalRunner` starts this
module instead, which runs the same worker main with three changes:

- **the worker exits with its driver**: if the driver process dies (SIGKILL, OOM
  killer, a closed terminal), the worker does not finish its in-flight bundles or
  linger: it exits at once. On Linux the kernel sends SIGKILL when the parent dies
  (``prctl(PR_SET_PDEATHSIG)``), and a watchdog thread waits on the driver's process
  (``pidfd_open``; elsewhere it checks every second) for the case where the worker's
  parent is a shell rather than the driver;
- **quiet logs** (``--quiet``): the worker's own stderr shows errors only, and
  TensorFlow's C++ start-up lines are captured
  (``logo_batch.console.native_stderr_captured``) or off; TensorFlow is imported at
  start only for an engine that needs it (``--tensorflow``);
- **a fast exit**: once the harness returns (every result sent, the control channel
  closed), the process ends without the interpreter's slow shutdown.

    python -m beam_jobs.sdk_worker --driver_pid PID [--quiet [--tensorflow]]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import logging
import os
import select
import signal
import sys
import threading
from collections.abc import Sequence

from beam_jobs.processes import pid_alive

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _exit_now() -> None:
    os._exit(70)  # no clean-up: the driver that would receive our results is gone


def _set_parent_death_signal() -> bool:
    """Linux: the kernel kills this process when its parent exits. False elsewhere."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(driver_pid: int) -> None:
    """Blocks until ``driver_pid`` exits, then ends this process."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is not None:
        try:
            fd = pidfd_open(driver_pid)
        except ProcessLookupError:
            _exit_now()
        except OSError:  # kernel older than 5.3, or not permitted: fall back
            pass
        else:
            select.select([fd], [], [])  # readable when the process has exited
            _exit_now()
    stop = threading.Event()
    while pid_alive(driver_pid):
        stop.wait(1.0)  # no exit notification available: check once a second
    _exit_now()


def exit_with_driver(driver_pid: int) -> None:
    """Ends this process as soon as ``driver_pid`` has exited (now, if it already has)."""
    if os.getppid() == driver_pid:
        _set_parent_death_signal()
    if not pid_alive(driver_pid):
        _exit_now()  # the driver died before we got here
    watchdog = threading.Thread(target=_watch, args=(driver_pid,), name="exit-with-driver")
    watchdog.daemon = True
    watchdog.start()


def _ask_harness_for_errors_only(environ) -> None:
    """Sets ``default_sdk_harness_log_level=ERROR`` in the options the harness reads.

    Beam's local runner hands its workers no pipeline options (``PIPELINE_OPTIONS``
    is ``{}``), so the level is added here, unless the options already set one.
    """
    try:
        options = json.loads(environ.get("PIPELINE_OPTIONS") or "{}")
    except ValueError:
        return
    target = options.get("options", options) if isinstance(options, dict) else None
    if not isinstance(target, dict):
        return
    if any("default_sdk_harness_log_level" in key for key in target):
        return
    target["default_sdk_harness_log_level"] = "ERROR"
    environ["PIPELINE_OPTIONS"] = json.dumps(options)


def quiet_logging() -> None:
    """Errors only: on this worker's stderr and in what it sends to the driver.

    TensorFlow's C++ lines are off too (``TF_CPP_MIN_LOG_LEVEL=3``, also set in the
    worker's command, since TensorFlow reads it once).
    """
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    _ask_harness_for_errors_only(os.environ)
    root = logging.getLogger()
    for handler in root.handlers:  # e.g. the stderr handler an import configured
        if isinstance(handler, logging.StreamHandler):
            handler.setLevel(logging.ERROR)
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setLevel(logging.ERROR)
        root.addHandler(handler)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m beam_jobs.sdk_worker")
    parser.add_argument("--driver_pid", type=int, default=None)
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--tensorflow", action="store_true", help="import it at start")
    args, rest = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    if args.driver_pid is not None:
        exit_with_driver(args.driver_pid)
    if args.quiet:
        from logo_batch.console import native_stderr_captured as stderr_captured

        with stderr_captured():  # TensorFlow's and Beam's start-up lines
            if args.tensorflow:  # a tf- engine: import it now (TensorFlow Lite needs none)
                import tensorflow  # noqa: F401
            from apache_beam.runners.worker import sdk_worker_main
        quiet_logging()
    else:  # every start-up line, as it comes
        from apache_beam.runners.worker import sdk_worker_main
    sdk_worker_main.main([sys.argv[0], *rest])
    # The harness has returned every result and the runner closed the control channel:
    # end now. The interpreter's own shutdown (gRPC thread pools, TensorFlow) took
    # 1-2.5 s per worker, and the runner waits for each worker in turn.
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(0)


if __name__ == "__main__":
    main()
