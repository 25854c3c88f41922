"""The coder of the job's batches of decoded images (:class:`BatchCoder`).

Beam samples the size of elements of every PCollection for its byte counters: the
first ten of each bundle, then fewer and fewer. With no coder of its own a batch of
decoded images is measured by pickling it: 19 MB for 32 inputs at 224 px (13 ms),
about 270 MB for 32 photos in whole mode, once for each step the batch passes. This
coder pickles the batch only to send it between processes, and estimates its size
from its arrays' sizes (why the job goes around Beam's default here:
``docs/architecture.md``).
"""

from __future__ import annotations

import dataclasses
import pickle
import sys
from typing import Any

import apache_beam as beam
import numpy as np


def payload_bytes(value: Any) -> int:
    """About the bytes ``value`` pickles to, without pickling it: arrays by their size,
    lists, tuples and dataclasses by their parts, anything else by ``sys.getsizeof``
    (an object may say what it holds with ``__sizeof__``)."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, (list, tuple)):
        return sum(payload_bytes(part) for part in value)
    if type(value).__sizeof__ is object.__sizeof__ and dataclasses.is_dataclass(value):
        return sum(payload_bytes(getattr(value, f.name)) for f in dataclasses.fields(value))
    return sys.getsizeof(value)


class BatchCoder(beam.coders.Coder):
    """Pickles an element (protocol 5: arrays as one buffer each); its size estimate
    is :func:`payload_bytes`, never a pickling."""

    def encode(self, value: Any) -> bytes:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def decode(self, encoded: bytes) -> Any:
        return pickle.loads(encoded)

    def is_deterministic(self) -> bool:
        return False

    def estimate_size(self, value: Any) -> int:
        return payload_bytes(value)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))


class ExampleBatch(list):
    """A batch as ``RunInference`` takes it: ``(key, example)`` pairs; its PCollections
    are coded by :class:`BatchCoder`."""


beam.coders.registry.register_coder(ExampleBatch, BatchCoder)
