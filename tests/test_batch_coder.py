"""The coder of decoded batches: estimates their size without pickling them."""

from __future__ import annotations

import pickle

import apache_beam as beam
import numpy as np
import pytest

from beam_jobs import batch_coder
from beam_jobs.batch_coder import BatchCoder, ExampleBatch, payload_bytes
from beam_jobs.decoding import DecodedBatch, DecodeImageBatches
from beam_jobs.file_facts import FileEntry
from beam_jobs.transforms import model_examples
from logo_batch.inference.whole_photo import photo_stack


def _batch() -> DecodedBatch:
    image = np.zeros((40, 60, 3), np.uint8)
    return DecodedBatch(
        inputs=[
            (FileEntry("a.jpg", size=10), np.ones((8, 8, 3), np.float32)),
            (FileEntry("b.jpg", size=20), photo_stack(image, 8)),
        ],
        errors=[(FileEntry("c.jpg"), "not a recognised image format")],
    )


def test_the_size_estimate_counts_the_arrays_and_never_pickles(monkeypatch):
    batch = _batch()
    arrays = 8 * 8 * 3 * 4 + 40 * 60 * 3 + 14 * 4 * 4  # the input, the photo, its windows
    pickled = len(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
    estimate = payload_bytes(batch)
    assert arrays <= estimate <= pickled * 2
    assert pickled <= estimate * 2  # the same order as what it pickles to

    def no_pickling(*args, **kwargs):
        raise AssertionError("the size estimate pickled the batch")

    monkeypatch.setattr(batch_coder.pickle, "dumps", no_pickling)
    coder_impl = BatchCoder().get_impl()
    assert coder_impl.estimate_size(batch) == estimate
    examples = model_examples(batch)
    assert isinstance(examples, ExampleBatch) and len(examples) == 3
    assert coder_impl.estimate_size(examples) == payload_bytes(examples)


def test_the_coder_round_trips_a_batch():
    batch = _batch()
    coder = BatchCoder()
    again = coder.decode(coder.encode(batch))
    assert [entry for entry, _ in again.inputs] == [entry for entry, _ in batch.inputs]
    np.testing.assert_array_equal(again.inputs[0][1], batch.inputs[0][1])
    np.testing.assert_array_equal(again.inputs[1][1].inputs, batch.inputs[1][1].inputs)
    assert again.errors == batch.errors
    examples = coder.decode(coder.encode(model_examples(batch)))
    assert isinstance(examples, ExampleBatch) and len(examples) == 3
    assert coder == BatchCoder() and not coder.is_deterministic()


@pytest.mark.parametrize("element_type", [DecodedBatch, ExampleBatch])
def test_the_registry_gives_batches_this_coder(element_type):
    assert isinstance(beam.coders.registry.get_coder(element_type), BatchCoder)


def test_the_decode_step_declares_its_batches():
    pipeline = beam.Pipeline(runner="DirectRunner")  # built, not run
    decoded = pipeline | beam.Create([(("a.jpg",),)]) | DecodeImageBatches(8)
    assert decoded.element_type is DecodedBatch
