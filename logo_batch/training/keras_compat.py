"""Work-arounds for Keras 3 + ``tf.distribute.MultiWorkerMirroredStrategy``.

Keras 3's TensorFlow trainer breaks ``fit`` under MultiWorkerMirroredStrategy
(keras-team/keras#20585, still present in Keras 3.15):

1. ``_maybe_symbolic_build`` MEAN-reduces the first distributed input batch with a
   collective op in eager mode, which fails with "Attempt to convert a value
   (PerReplica...)". Building from the local replica's batch is all it needs.
2. ``reduce_per_replica`` reduces the per-step logs with ``strategy.reduce("MEAN",
   v, axis=0)``, which fails on the scalar loss/metrics ("Invalid reduction
   dimension 0 for input with 0 dimensions"). Reducing across replicas only
   (``axis=None``) is the intended mean.

:func:`patch_multi_worker_fit` applies both, only to the multi-worker code path;
single-device and MirroredStrategy training are untouched.

The patch replaces private Keras functions, so it is applied only to the Keras versions
whose code it was checked against (:data:`SUPPORTED_KERAS`), and fails with a clear
message on any other. Checked by reading ``keras/src/backend/tensorflow/trainer.py``:
``_maybe_symbolic_build``, ``reduce_per_replica`` and
``_collective_all_reduce_multi_worker`` are the same from 3.11.0 to 3.15.1; 3.10 and
earlier iterate ``(step, iterator)`` pairs in ``_maybe_symbolic_build``, not the
``(begin, end, iterator)`` triples the replacement below expects.
"""

from __future__ import annotations

import re

import keras
import tensorflow as tf

# Keras versions the patch is known to work with: >= 3.11, < 3.16 (major, minor).
SUPPORTED_KERAS = ((3, 11), (3, 16))

_PATCHED = False


class UnsupportedKerasError(RuntimeError):
    """Multi-worker training needs a Keras version the work-around was checked against."""


def check_keras_version(version: str | None = None) -> None:
    """Raises :class:`UnsupportedKerasError` unless ``version`` (default: the installed
    Keras) is in :data:`SUPPORTED_KERAS`."""
    version = keras.__version__ if version is None else version
    (low, high) = SUPPORTED_KERAS
    match = re.match(r"(\d+)\.(\d+)", version)
    if match is None or not low <= (int(match[1]), int(match[2])) < high:
        raise UnsupportedKerasError(
            f"multi-worker training (MultiWorkerMirroredStrategy) patches Keras internals "
            f"and is known to work with Keras >= {low[0]}.{low[1]}, < {high[0]}.{high[1]} "
            f"only; Keras {version} is installed. Install a supported Keras "
            f"(pip install 'keras>={low[0]}.{low[1]},<{high[0]}.{high[1]}'), or train on "
            f"one machine (--strategy default or mirrored). See logo_batch/keras_compat.py."
        )


def _local_value(value):
    if isinstance(value, tf.distribute.DistributedValues):
        return tf.distribute.get_strategy().experimental_local_results(value)[0]
    return value


def patch_multi_worker_fit() -> None:
    """Makes ``model.fit`` work under MultiWorkerMirroredStrategy (idempotent).

    Raises :class:`UnsupportedKerasError` outside :data:`SUPPORTED_KERAS`.
    """
    global _PATCHED
    if _PATCHED:
        return
    check_keras_version()
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer as _tf_trainer

    def _is_multi_worker(strategy) -> bool:
        return strategy is not None and _tf_trainer._collective_all_reduce_multi_worker(strategy)

    original_reduce = _tf_trainer.reduce_per_replica
    original_build = _tf_trainer.TensorFlowTrainer._maybe_symbolic_build

    def reduce_per_replica(values, strategy, reduction="auto"):
        if _is_multi_worker(strategy) and reduction in ("auto", "mean"):
            return tree.map_structure(
                lambda v: (
                    strategy.reduce("MEAN", v, axis=None)
                    if isinstance(v, tf.distribute.DistributedValues)
                    else v
                ),
                values,
            )
        return original_reduce(values, strategy, reduction)

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if iterator is None or not _is_multi_worker(strategy):
            return original_build(self, iterator=iterator, data_batch=data_batch)
        for _, _, batches in iterator:
            first = next(batches)
            break
        with strategy.scope():
            local = tree.map_structure(_local_value, first)
            self._symbolic_build(data_batch=local)
        return None

    _tf_trainer.reduce_per_replica = reduce_per_replica
    _tf_trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    _PATCHED = True
