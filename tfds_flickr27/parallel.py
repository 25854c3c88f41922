"""Per-image work (decode checks, crops) on a thread pool, results in input order.

JPEG decoding (Pillow's and TensorFlow's), JPEG encoding and sha256 release the GIL, so
threads use every core without copying image bytes to other processes.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def cpu_count() -> int:
    """The cores this process may run on (its affinity where the OS tells it)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def batches(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last one shorter), read as they come."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def ordered_map(
    fn: Callable[[T], R], items: Iterable[T], workers: int | None = None
) -> Iterator[R]:
    """``map(fn, items)`` on ``workers`` threads (default: one per core), in input order.

    At most ``4 * workers`` items are in flight, so a long (streamed) ``items`` is never
    held in memory at once. An exception from ``fn`` or from ``items`` propagates when
    reached; work not started by then is cancelled.
    """
    workers = workers or cpu_count()
    ahead = 4 * workers
    pending: collections.deque[Future[R]] = collections.deque()
    with ThreadPoolExecutor(workers, thread_name_prefix="flickr27") as pool:
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= ahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
