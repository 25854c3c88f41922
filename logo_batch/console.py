"""What the user sees: quiet by default, everything with ``--verbose``.

TensorFlow prints start-up lines from C++ before Python logging exists (``Could not
find cuda drivers``, ``failed call to cuInit`` on machines without a GPU, CPU feature
notes). Quiet mode sets ``TF_CPP_MIN_LOG_LEVEL=2`` and captures the process's native
standard error while TensorFlow starts and probes its devices; the captured text is
shown again only if that start fails. ``--verbose`` (or ``LOGO_BATCH_VERBOSE=1``,
which worker processes inherit) shows everything.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

VERBOSE_ENV = "LOGO_BATCH_VERBOSE"


def is_verbose() -> bool:
    """True when the user asked for every log line."""
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def set_verbose(verbose: bool) -> None:
    """Chooses quiet or verbose for this process and the processes it starts."""
    os.environ[VERBOSE_ENV] = "1" if verbose else "0"
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for name in ("absl", "tensorflow", "apache_beam"):
        logging.getLogger(name).setLevel(logging.ERROR)


@dataclass
class Captured:
    """What a :func:`native_stderr_captured` block wrote to file descriptor 2."""

    text: str = ""


@contextlib.contextmanager
def native_stderr_captured(enabled: bool = True) -> Iterator[Captured]:
    """Captures file descriptor 2 (C++ logging too) into ``.text``; replays it if the
    block fails, so the reason an import failed never vanishes."""
    captured = Captured()
    try:
        if not enabled:
            raise ValueError("capture disabled")
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # disabled, or no usable stderr
        yield captured
        return
    failed = False
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        except BaseException:
            failed = True
            raise
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.text = sink.read().decode("utf-8", "replace")
            if failed:
                sys.stderr.write(captured.text)


def start_tensorflow_quietly() -> None:
    """Imports TensorFlow and probes its devices with the start-up lines captured."""
    with native_stderr_captured(not is_verbose()):
        import tensorflow as tf

        tf.config.list_physical_devices()
