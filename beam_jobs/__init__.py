"""Apache Beam jobs of logo-batch.

Importing the jobs imports TensorFlow, Keras and Beam, whose start-up chatter (CUDA
stub and CPU-feature lines, optional cloud clients not installed) is noise for a
command-line job: it is captured here (``logo_batch.console.native_stderr_captured``)
and kept in :data:`STARTUP_LOG`, which ``--verbose`` prints. TensorFlow's later C++ INFO and
WARNING lines are off unless ``TF_CPP_MIN_LOG_LEVEL`` is set.
"""

import os as _os

from logo_batch.console import native_stderr_captured as _stderr_captured

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

with _stderr_captured() as _captured:
    import apache_beam as _apache_beam  # noqa: F401
    import keras as _keras  # noqa: F401
    import tensorflow as _tensorflow  # noqa: F401

STARTUP_LOG: str = _captured.text
