"""A Dask cluster started as a user starts one: ``dask scheduler`` and ``dask worker`` as
separate processes (the scale benchmark and the real-cluster test use it).

    dask scheduler --host 127.0.0.1 --port 0 --no-dashboard
    dask worker tcp://127.0.0.1:PORT --nworkers W --nthreads 1 --memory-limit 4GB

Port 0 lets the scheduler pick a free port, which it prints (``Scheduler at: ...``).
The processes run in their own process groups and are always stopped (terminated,
then killed) when the ``with`` block ends, whatever happened in it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import REPO


def dask_command() -> Path:
    """The ``dask`` command of this interpreter's environment."""
    return Path(sys.executable).with_name("dask")


@dataclass
class DaskCluster:
    address: str
    scheduler: subprocess.Popen
    workers: subprocess.Popen

    def worker_pids(self) -> list[int]:
        """The worker processes (children of ``dask worker``, which runs their nannies;
        not multiprocessing's resource tracker)."""
        import psutil

        try:
            children = psutil.Process(self.workers.pid).children(recursive=True)
        except psutil.Error:
            return []
        return [child.pid for child in children if "resource_tracker" not in _cmdline(child)]


def _cmdline(process) -> str:
    try:
        return " ".join(process.cmdline())
    except Exception:  # noqa: BLE001  (psutil.Error: gone)
        return ""


def _scheduler_address(scheduler: subprocess.Popen, log: Path, timeout: float) -> str:
    """Reads the scheduler's output until it names its address; the rest goes to ``log``."""
    found: list[str] = []
    ready = threading.Event()

    def copy() -> None:
        with open(log, "wb") as out:
            for line in scheduler.stdout:
                out.write(line)
                out.flush()
                match = re.search(rb"Scheduler at:\s*(\S+)", line)
                if match and not found:
                    found.append(match.group(1).decode())
                    ready.set()
        ready.set()  # the scheduler exited

    threading.Thread(target=copy, daemon=True, name="dask-scheduler-log").start()
    if not ready.wait(timeout) or not found:
        raise RuntimeError(f"dask scheduler did not start; see {log}")
    return found[0]


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


@contextlib.contextmanager
def dask_cluster(
    folder: Path,
    *,
    workers: int = 2,
    threads: int = 1,
    memory_limit: str = "4GB",
    timeout: float = 180.0,
) -> Iterator[DaskCluster]:
    """A scheduler and ``workers`` worker processes (``threads`` threads and
    ``memory_limit`` each), logs in ``folder``; the workers import this checkout."""
    from distributed import Client

    folder.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(REPO), env.get("PYTHONPATH")] if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    command = str(dask_command())
    started: list[subprocess.Popen] = []
    try:
        started.append(
            subprocess.Popen(
                [command, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=REPO,
                start_new_session=True,
            )
        )  # fmt: skip
        address = _scheduler_address(started[0], folder / "scheduler.log", timeout)
        with open(folder / "workers.log", "wb") as log:
            started.append(
                subprocess.Popen(
                    [command, "worker", address, "--nworkers", str(workers),
                     "--nthreads", str(threads), "--memory-limit", memory_limit,
                     "--no-dashboard", "--local-directory", str(folder / "worker-space")],
                    stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO,
                    start_new_session=True,
                )
            )  # fmt: skip
        with Client(address, timeout=timeout) as client:
            client.wait_for_workers(workers, timeout=timeout)
        yield DaskCluster(address, started[0], started[1])
    finally:
        for process in reversed(started):
            _stop(process)
