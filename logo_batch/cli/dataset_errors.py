"""One way the dataset commands (train, evaluate, quantize) end on bad input: one line."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TypeVar

from tensorflow.errors import DataLossError

from logo_batch.data.prepared import corrupt_records_message

T = TypeVar("T")


def run_reporting(
    command: str,
    call: Callable[[], T],
    data_dir: str | os.PathLike,
    dataset: str | None,
    also: tuple[type[Exception], ...] = (),
) -> T | None:
    """``call()``'s result; ``None`` after printing ``logo-batch COMMAND: error: ...``
    for a missing file, a bad value, ``also``, or a record failing its CRC (named by
    its file)."""
    try:
        return call()
    except (FileNotFoundError, ValueError, *also) as error:
        message = str(error)
    except DataLossError as error:  # a record's CRC fails as it is read
        message = corrupt_records_message(error, data_dir, dataset)
    print(f"logo-batch {command}: error: {message}", file=sys.stderr)
    return None
