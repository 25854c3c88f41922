"""Start-up noise kept off the terminal: native (C++) stderr captured during imports.

TensorFlow's CUDA stub and CPU-feature lines are written by its C++ logging before
``TF_CPP_MIN_LOG_LEVEL`` applies, straight to file descriptor 2, so no Python logging
setting reaches them. :func:`stderr_captured` points descriptor 2 at a temporary
file for the duration of a block; the text is kept (``--verbose`` prints it) and is
written out at once if the block raises.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class Captured:
    text: str = ""


@contextlib.contextmanager
def stderr_captured() -> Iterator[Captured]:
    """Everything written to file descriptor 2 inside the block, in ``.text`` after it."""
    captured = Captured()
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable stderr: nothing to capture
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
            if failed:  # the reason an import failed must not vanish
                sys.stderr.write(captured.text)
