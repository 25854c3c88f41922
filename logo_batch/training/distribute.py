"""Where and how training runs: tf.distribute strategy, mixed precision, XLA.

Switches take ``auto`` (on when a GPU is present), ``on`` or ``off``. Strategies:
``default`` (one device), ``mirrored`` (all local GPUs, else all logical CPUs),
``multi_worker`` (``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``) and ``auto``
(multi_worker when ``TF_CONFIG`` names several tasks, mirrored with several GPUs,
else default).

Precision (:func:`resolve_precision`, ``--mixed-precision``) is a Keras dtype policy
chosen at run time from what this machine has: ``mixed_float16`` on a GPU,
``mixed_bfloat16`` on a CPU with bfloat16 matrix units (AMX: Intel Sapphire Rapids and
later) that TensorFlow drives through oneDNN, else ``float32``
(:func:`logo_batch.inference.cpu.cpu_features` reads the CPU's flags).
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass

import keras
import tensorflow as tf

from logo_batch.inference.cpu import CpuFeatures, cpu_features, has_gpu
from logo_batch.inference.engines import FLOAT32, MIXED_BFLOAT16, MIXED_FLOAT16

SWITCH_VALUES = ("auto", "on", "off")
STRATEGIES = ("auto", "default", "mirrored", "multi_worker")
# --mixed-precision: auto (see resolve_precision), on (mixed_float16: GPUs), bfloat16, off.
PRECISION_VALUES = ("auto", "on", "bfloat16", "off")


def resolve_switch(value: str | bool, name: str = "switch") -> bool:
    """``auto`` → GPU present; ``on``/``off`` (or a bool) as given."""
    if isinstance(value, bool):
        return value
    if value not in SWITCH_VALUES:
        raise ValueError(f"{name} must be one of {SWITCH_VALUES}, not {value!r}")
    return has_gpu() if value == "auto" else value == "on"


def resolve_precision(
    value: str | bool, *, gpu: bool | None = None, cpu: CpuFeatures | None = None
) -> str:
    """The Keras dtype policy for a ``--mixed-precision`` value.

    ``auto``: ``mixed_float16`` with a GPU; ``mixed_bfloat16`` on a CPU with fast
    bfloat16 (:attr:`CpuFeatures.fast_bfloat16`); ``float32`` otherwise. ``on`` is
    ``mixed_float16``, ``bfloat16`` is ``mixed_bfloat16``, ``off`` is ``float32``
    (a bool as on/off). ``gpu`` and ``cpu`` default to this machine's.
    """
    if isinstance(value, bool):
        value = "on" if value else "off"
    if value not in PRECISION_VALUES:
        raise ValueError(f"mixed_precision must be one of {PRECISION_VALUES}, not {value!r}")
    if value != "auto":
        return {"on": MIXED_FLOAT16, "bfloat16": MIXED_BFLOAT16, "off": FLOAT32}[value]
    if has_gpu() if gpu is None else gpu:
        return MIXED_FLOAT16
    cpu = cpu_features() if cpu is None else cpu
    return MIXED_BFLOAT16 if cpu.fast_bfloat16 else FLOAT32


def set_precision(policy: str) -> str:
    """Sets Keras's global dtype policy (a name from :func:`resolve_precision`);
    returns it."""
    keras.mixed_precision.set_global_policy(policy)
    return policy


@dataclass(frozen=True)
class TaskInfo:
    """This process's role in a (possibly multi-worker) cluster."""

    task_type: str | None
    task_id: int
    num_workers: int
    has_chief_task: bool = False

    @property
    def is_chief(self) -> bool:
        """The chief writes the outputs; other workers write to their own folders."""
        if self.task_type in (None, "chief"):
            return True
        return self.task_type == "worker" and self.task_id == 0 and not self.has_chief_task

    @property
    def name(self) -> str:
        return "chief" if self.task_type is None else f"{self.task_type}_{self.task_id}"


def task_info() -> TaskInfo:
    """Reads ``TF_CONFIG`` with TensorFlow's own resolver (absent → a single chief).

    Workers are the ``chief`` and ``worker`` tasks (not ``evaluator`` or ``ps``).
    """
    if not os.environ.get("TF_CONFIG", ""):
        return TaskInfo(None, 0, 1)
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    try:
        cluster = resolver.cluster_spec()
        task_type, task_id = resolver.task_type, resolver.task_id
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON: {error}") from error
    jobs = set(cluster.jobs)
    workers = sum(cluster.num_tasks(kind) for kind in ("chief", "worker") if kind in jobs)
    return TaskInfo(task_type, task_id or 0, max(workers, 1), "chief" in jobs)


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """Creates the strategy (call before building any model or dataset)."""
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, not {name!r}")
    if name == "auto":
        if task_info().num_workers > 1:
            name = "multi_worker"
        elif len(tf.config.list_physical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "multi_worker" and not os.environ.get("TF_CONFIG"):
        raise ValueError("strategy multi_worker needs the TF_CONFIG environment variable")
    if name in ("multi_worker", "mirrored"):
        return _shared_strategy(name)
    return tf.distribute.get_strategy()


@functools.cache
def _shared_strategy(name: str) -> tf.distribute.Strategy:
    """One strategy object per kind and process.

    Every strategy numbers its collective operations from the same start, so a
    second ``MirroredStrategy`` in the same process (a second ``train()`` call) would
    join the first one's collectives with mismatched shapes; and TensorFlow allows one
    ``MultiWorkerMirroredStrategy`` per process.
    """
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if has_gpu():
        return tf.distribute.MirroredStrategy()
    cpus = [device.name for device in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices=cpus)
