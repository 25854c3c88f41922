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


@contextlib.contextmanager
def native_stderr_captured(enabled: bool = True) -> Iterator[None]:
    """Captures file descriptor 2 (C++ logging too); replays it if the block fails."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def start_tensorflow_quietly() -> None:
    """Imports TensorFlow and probes its devices with the start-up lines captured."""
    with native_stderr_captured(not is_verbose()):
        import tensorflow as tf

        tf.config.list_physical_devices()
