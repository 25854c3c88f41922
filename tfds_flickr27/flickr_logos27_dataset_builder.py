"""FlickrLogos-27 (Kalantidis et al., ICMR 2011) as a TFDS dataset: `images` and `crops`."""

from __future__ import annotations

import dataclasses
import logging
import os

import tensorflow_datasets as tfds

from tfds_flickr27 import annotations as ann
from tfds_flickr27 import archive as archive_lib
from tfds_flickr27 import checks
from tfds_flickr27 import download as download_lib
from tfds_flickr27 import features as features_lib
from tfds_flickr27 import splits as splits_lib
from tfds_flickr27.crops import crop_jpegs
from tfds_flickr27.names import ARCHIVE_NAME, CROPS, DATASET_NAME, IMAGES, URL
from tfds_flickr27.parallel import ordered_map

# A file's crops: (box, JPEG bytes) in box order.
Crops = dict[str, list[tuple[ann.Box, bytes]]]

log = logging.getLogger(__name__)


@dataclasses.dataclass(eq=False)
class Flickr27Config(tfds.core.BuilderConfig):
    """A config: ``kind`` is ``images`` or ``crops``; crops get ``margin`` and ``square``.

    ``margin``: fraction of the (squared) box side added on each side of a crop.
    ``square``: make the crop window square around the box centre before the margin, so
    resizing to a square model input does not distort the logo.
    ``max_skipped_fraction``: images that do not decode and boxes outside their image are
    skipped (logged by name, listed in ``info.metadata``); more than this fraction of the
    annotated images, or of the boxes, fails the build instead.
    """

    kind: str = IMAGES
    margin: float = 0.15
    square: bool = True
    max_skipped_fraction: float = checks.MAX_SKIPPED_FRACTION


class Builder(tfds.core.GeneratorBasedBuilder):
    """FlickrLogos-27: 27 logo classes, whole images or logo crops."""

    name = DATASET_NAME
    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release: `images` and `crops` configs.",
        "1.1.0": "Every image is decoded at build time; images that do not decode are "
        "skipped, boxes are clipped to their image or rejected when wholly outside; what "
        "was skipped is listed in `info.metadata`. Same examples for the original archive.",
    }
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    Optional. Where {URL} cannot be downloaded, put the archive `{ARCHIVE_NAME}`
    (unchanged, not extracted) in the manual directory: pass `--manual_dir DIR`
    (`tfds build`) or `download_config=tfds.download.DownloadConfig(manual_dir=DIR)`,
    DIR holding `{ARCHIVE_NAME}`. The default manual directory is
    `<data_dir>/downloads/manual/`.
    """
    BUILDER_CONFIGS = [
        Flickr27Config(
            name=IMAGES,
            kind=IMAGES,
            description="Whole images: train/validation (80/20 per class) from the training "
            "set; test = the official query set (135 logo + 135 `none` images).",
        ),
        Flickr27Config(
            name=CROPS,
            kind=CROPS,
            description="One logo crop per distinct box (square, 15% margin); "
            "train/validation/test 70/15/15 of training-set images per class.",
        ),
    ]
    DEFAULT_CONFIG_NAME = IMAGES

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=features_lib.features(self.builder_config.kind, ann.LABEL_NAMES),
            supervised_keys=("image", "label"),
            homepage="http://image.ntua.gr/iva/datasets/flickr_logos/",
            metadata=tfds.core.MetadataDict(),
        )

    def _archive_path(self, dl_manager: tfds.download.DownloadManager) -> os.PathLike:
        """The manual-dir copy if present, else the download; a clear error if neither.

        A manual dir the user named (not TFDS's default ``<data_dir>/downloads/manual``)
        that lacks the archive is an error saying so, before any download."""
        try:  # the public property (TFDS's test case patches it); it refuses an empty dir
            manual_dir = dl_manager.manual_dir
        except (AssertionError, ValueError):
            manual_dir = getattr(dl_manager, "_manual_dir", None)
        default = dl_manager.download_dir / "manual"
        named = manual_dir is not None and os.fspath(manual_dir) != os.fspath(default)
        if manual_dir is not None and not named and not (manual_dir / ARCHIVE_NAME).exists():
            manual_dir = None  # TFDS's default manual dir: download
        try:
            return download_lib.archive_path(manual_dir, dl_manager.download, required=named)
        except download_lib.MissingArchiveError:
            raise
        except Exception as error:  # noqa: BLE001 - any download failure gets the same advice
            raise RuntimeError(
                f"flickr_logos27: cannot download {URL} ({type(error).__name__}: {error}). "
                f"Put {ARCHIVE_NAME} in a directory DIR and pass `--manual_dir DIR`, or copy it "
                f"to the default manual dir {default}/{ARCHIVE_NAME}."
            ) from error

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        # One pass over the archive: annotations, hashes, decode checks and the image bytes.
        path = self._archive_path(dl_manager)
        scanned = archive_lib.scan(path, keep_images=True)
        fraction = self.builder_config.max_skipped_fraction
        index, report = checks.check(scanned, path, fraction)
        if self.builder_config.kind == IMAGES:
            self.info.metadata.update(report.as_metadata())
            plan = splits_lib.plan(index, [("validation", 0.2)], leak_split=splits_lib.EXCLUDED)
            left_out = sorted(f for f, s in plan.items() if s == splits_lib.EXCLUDED)
            log.warning(
                "flickr_logos27/images: %d training images left out (byte-identical to a "
                "query image): %s",
                len(left_out),
                left_out,
            )
            return {
                "train": self._generate_examples(index, _files(plan, "train")),
                "validation": self._generate_examples(index, _files(plan, "validation")),
                "test": self._generate_examples(index, set(index.query), query=True),
            }
        crops, failed = self._make_crops(path, index)
        if failed:  # TensorFlow decoded them but Pillow does not: skipped like the others
            scanned.unusable.update(failed)
            index, report = checks.check(scanned, path, fraction)
        # Saved as metadata.json next to dataset_info.json: builder.info.metadata.
        self.info.metadata.update(report.as_metadata())
        plan = splits_lib.plan(index, [("validation", 0.15), ("test", 0.15)], leak_split="test")
        return {
            split: self._generate_examples(index, _files(plan, split), crops)
            for split in ("train", "validation", "test")
        }

    def _generate_examples(
        self,
        index: archive_lib.ArchiveIndex,
        files: set[str],
        crops: Crops | None = None,
        query: bool = False,
    ):
        """Yields the examples of the ``files``: query images when ``query``, their
        ``crops`` when given, else whole training images."""
        if query:
            return self._generate_queries(index)
        if crops is None:
            return self._generate_images(index, files)
        return self._generate_crops(index, crops, files)

    def _generate_images(self, index: archive_lib.ArchiveIndex, files: set[str]):
        """Yields the whole-image examples of the training-set ``files`` (original bytes)."""
        boxes = _boxes_by_file(index)
        for filename in sorted(files):
            width, height = index.size[filename]
            labels = index.training.labels[filename]
            own = boxes.get(filename, [])
            yield (
                filename,
                {
                    "image": index.images[filename],
                    "label": ann.primary_label(own, labels),
                    "labels": labels,
                    "objects": [
                        {"bbox": features_lib.bbox(box, width, height), "label": box.label}
                        for box in own
                    ],
                    "filename": filename,
                },
            )

    def _generate_queries(self, index: archive_lib.ArchiveIndex):
        """Yields the query-set examples (original bytes, no boxes)."""
        for filename, label in sorted(index.query.items()):
            yield (
                filename,
                {
                    "image": index.images[filename],
                    "label": label,
                    "labels": [] if label == ann.NONE_LABEL else [label],
                    "objects": [],
                    "filename": filename,
                },
            )

    def _make_crops(
        self, path, index: archive_lib.ArchiveIndex
    ) -> tuple[Crops, dict[str, archive_lib.Unusable]]:
        """Every kept box's crop (one Pillow decode per image, one thread per core), and
        the images Pillow cannot decode."""
        config = self.builder_config
        boxes = _boxes_by_file(index)

        def crop(filename: str) -> tuple[str, list[bytes] | str]:
            data = index.images[filename]
            try:
                return filename, crop_jpegs(data, boxes[filename], config.margin, config.square)
            except ValueError as error:
                return filename, str(error)

        crops: Crops = {}
        failed: dict[str, archive_lib.Unusable] = {}
        for filename, result in ordered_map(crop, sorted(boxes)):
            if isinstance(result, str):
                failed[filename] = archive_lib.Unusable(
                    os.fspath(path), index.member[filename], result
                )
            else:
                crops[filename] = list(zip(boxes[filename], result, strict=True))
        return crops, failed

    def _generate_crops(self, index: archive_lib.ArchiveIndex, crops: Crops, files: set[str]):
        """Yields the crop examples of the ``files``' boxes."""
        for filename in sorted(files & set(crops)):
            for box, jpeg in crops[filename]:
                key = f"{filename}/{box.label}/{box.x1}_{box.y1}_{box.x2}_{box.y2}"
                yield (
                    key,
                    {
                        "image": jpeg,
                        "label": box.label,
                        "bbox": features_lib.bbox(box, *index.size[filename]),
                        "filename": filename,
                    },
                )


def _files(plan: dict[str, str], split: str) -> set[str]:
    return {f for f, s in plan.items() if s == split}


def _boxes_by_file(index: archive_lib.ArchiveIndex) -> dict[str, list[ann.Box]]:
    result: dict[str, list[ann.Box]] = {}
    for box in sorted(index.training.boxes):
        result.setdefault(box.filename, []).append(box)
    return result
