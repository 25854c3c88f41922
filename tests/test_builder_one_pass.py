"""How the builder reads and works: one pass over the archive, per-image work in parallel.

On the small synthetic archive (tests/conftest.py): a build opens the archive once, the
scan keeps the bytes it read, per-image work keeps input order with bounded look-ahead,
and an image Pillow cannot crop (which the decode check cannot foresee) is skipped by
name instead of failing the ``crops`` build.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from tfds_flickr27 import archive as archive_lib
from tfds_flickr27.parallel import ordered_map

# --- ordered_map -------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2, 5])
def test_ordered_map_keeps_input_order(workers):
    assert list(ordered_map(lambda n: n * n, range(200), workers)) == [n * n for n in range(200)]


def test_ordered_map_reads_ahead_a_bounded_number_of_items():
    taken = 0

    def items():
        nonlocal taken
        for n in range(100):
            taken += 1
            yield n

    lead = []
    for consumed, _ in enumerate(ordered_map(lambda n: n, items(), workers=2), start=1):
        lead.append(taken - consumed)
    assert max(lead) <= 4 * 2  # at most 4 items per worker in flight


def test_ordered_map_raises_the_first_failure_in_input_order():
    started = []
    lock = threading.Lock()

    def work(n: int) -> int:
        with lock:
            started.append(n)
        if n in (5, 9):
            raise ValueError(f"bad item {n}")
        return n

    results = []
    with pytest.raises(ValueError, match="bad item 5"):
        for value in ordered_map(work, range(1000), workers=2):
            results.append(value)
    assert results == [0, 1, 2, 3, 4]
    assert len(started) < 1000  # the rest was cancelled, not run


def test_ordered_map_raises_a_failure_of_the_input():
    def items():
        yield from range(3)
        raise OSError("stream cut")

    with pytest.raises(OSError, match="stream cut"):
        list(ordered_map(lambda n: n, items(), workers=2))


# --- one pass ------------------------------------------------------------------------------


def test_scan_keeps_the_bytes_it_read_when_asked(synthetic_archive: Path):
    kept = archive_lib.scan(synthetic_archive, keep_images=True)
    streamed = dict(archive_lib.iter_images(synthetic_archive, kept.sha256))
    assert kept.images == streamed
    assert {n: hashlib.sha256(d).hexdigest() for n, d in kept.images.items()} == kept.sha256
    assert set(kept.member) == set(kept.sha256)
    assert archive_lib.scan(synthetic_archive).images == {}  # not kept by default


@pytest.mark.parametrize("config", ["images", "crops"])
def test_a_build_reads_the_archive_once(synthetic_archive, config, tmp_path, monkeypatch):
    import tfds_flickr27

    opened = []
    real_open = archive_lib._open

    def counting_open(path):
        opened.append(path)
        return real_open(path)

    monkeypatch.setattr(archive_lib, "_open", counting_open)
    builder = tfds_flickr27.build_dataset(config, tmp_path, synthetic_archive.parent)
    assert sum(split.num_examples for split in builder.info.splits.values()) > 0
    assert len(opened) == 1, opened


def test_an_image_pillow_cannot_crop_is_skipped_by_name(synthetic_archive, tmp_path, monkeypatch):
    """Fault injection: Pillow fails on one image the decode check passed."""
    import tensorflow_datasets as tfds

    import tfds_flickr27
    from tfds_flickr27 import flickr_logos27_dataset_builder as builder_module

    index = archive_lib.scan(synthetic_archive, keep_images=True)
    digests = list(index.sha256.values())
    unique = {name for name, digest in index.sha256.items() if digests.count(digest) == 1}
    victim = min(box.filename for box in index.training.boxes if box.filename in unique)
    real_crop = builder_module.crop_jpegs

    def crop_jpegs(data, boxes, *args, **kwargs):
        if data == index.images[victim]:
            raise ValueError("Pillow cannot decode it: broken data stream")
        return real_crop(data, boxes, *args, **kwargs)

    monkeypatch.setattr(builder_module, "crop_jpegs", crop_jpegs)
    builder = tfds_flickr27.build_dataset("crops", tmp_path, synthetic_archive.parent)
    files = {
        example["filename"].decode()
        for split in builder.info.splits
        for example in tfds.as_numpy(
            builder.as_dataset(split, decoders={"image": tfds.decode.SkipDecoding()})
        )
    }
    with_boxes = {box.filename for box in index.training.boxes}
    assert files == with_boxes - {victim}
    skipped = builder.info.metadata["skipped_images"]
    assert skipped == {index.member[victim]: "Pillow cannot decode it: broken data stream"}
    assert builder.info.metadata["num_skipped_images"] == 1
