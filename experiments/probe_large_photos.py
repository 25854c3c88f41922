"""Probe (issue 27): whole mode on camera-size photos, full-size vs DCT-downscaled decode.

FlickrLogos-27's query photos (at most 500 px) upscaled to ``--long`` px on their long
side (Lanczos, JPEG quality 90) stand in for a camera's photos. Each is classified in
whole mode with the bundle's cascade and threshold, its windows cut from the full-size
decode (whole mode before 2026-12-08) and from the decode downscaled in the DCT domain to
what the grid needs (:func:`~logo_batch.inference.whole_photo.load_photo_stack`), and the
originals once more as the reference. Prints, for each: seconds a photo in this process
(decode, windows, model), logo photos right and accepted, ``none`` photos rejected; and
how many answers the two decodes share.

    python -m experiments.probe_large_photos BUNDLE [--archive A] [--long 4000] [--count 270]
"""

from __future__ import annotations

import argparse
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

WORK = Path("/tmp/logo_batch_probe_large")


def classify(bundle, stacks, threshold: float) -> tuple[list[str], np.ndarray, float]:
    """Labels (``none`` below the threshold), brand scores and seconds a photo."""
    from logo_batch.inference import whole_photo
    from logo_batch.inference.predict import background_class_of, photo_to_prediction

    background = background_class_of(bundle.metadata)
    start, labels, scores = time.perf_counter(), [], []
    for photo in whole_photo.score_window_stacks(
        bundle.model,
        stacks,
        bundle.class_names,
        background,
        cascade=whole_photo.Cascade.of(bundle.metadata),
    ):
        row = photo_to_prediction("", photo, bundle.class_names, background, min_score=threshold)
        labels.append(row.label)
        scores.append(photo.brand_scores)
    return labels, np.stack(scores), time.perf_counter() - start


def share(hits: np.ndarray) -> str:
    """The share of True in ``hits``, or "n/a" for none."""
    return f"{hits.mean():.3f}" if hits.size else "n/a"


def main(argv=None) -> int:
    from benchmarks.common import extract_images, real_archive, upscaled_photos

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--archive", type=Path, default=real_archive())
    parser.add_argument("--long", type=int, default=4000, help="long side of the photos, px")
    parser.add_argument("--count", type=int, default=270, help="query photos to use")
    args = parser.parse_args(argv)
    from logo_batch.inference.engines import open_for_inference
    from logo_batch.inference.preprocessing import load_image
    from logo_batch.inference.whole_photo import load_photo_stack, photo_stack
    from tfds_flickr27.annotations import parse_query
    from tfds_flickr27.archive import QUERY_FILE

    with tarfile.open(args.archive) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(QUERY_FILE))
        truth = parse_query(tar.extractfile(member).read())
    originals = extract_images(args.archive, WORK / "images")
    query = sorted(p for p in originals if p.name in truth)
    photos = query[:: max(1, len(query) // args.count)][: args.count]  # logo and none alike
    large = upscaled_photos(photos, WORK / f"long_{args.long}", args.long)
    bundle, engine = open_for_inference(args.bundle, "auto")
    size, threshold = bundle.image_size, bundle.metadata.rejection_threshold
    views = {
        "originals (<= 500 px)": lambda: (load_photo_stack(p, size) for p in photos),
        f"{args.long} px, full-size decode": lambda: (
            photo_stack(load_image(p), size) for p in large
        ),
        f"{args.long} px, DCT-downscaled decode": lambda: (
            load_photo_stack(p, size) for p in large
        ),
    }
    expected = [truth[p.name] for p in photos]
    logo = np.array([label != "none" for label in expected])
    results = {}
    print(f"{len(photos)} query photos ({logo.sum()} with a logo); bundle {args.bundle}; "
          f"engine {engine}; threshold {threshold:.3f}")  # fmt: skip
    for name, stacks in views.items():
        labels, scores, seconds = classify(bundle, stacks(), threshold)
        results[name] = (labels, scores)
        right = np.array([got == want for got, want in zip(labels, expected, strict=True)])
        print(f"{name}: {seconds / len(photos):.3f} s a photo; right and accepted "
              f"{share(right[logo])}, none rejected {share(right[~logo])}")  # fmt: skip
    (full, full_scores), (dct, dct_scores) = list(results.values())[1:]
    same = sum(a == b for a, b in zip(full, dct, strict=True))
    print(f"full vs DCT decode: same answer on {same} of {len(photos)} photos; "
          f"max brand score difference {np.abs(full_scores - dct_scores).max():.4f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
