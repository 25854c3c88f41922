"""FlickrLogos-27 (Kalantidis et al., ICMR 2011) as a TFDS dataset: `images` and `crops`."""

from __future__ import annotations

import dataclasses
import io
import logging
import os

import tensorflow_datasets as tfds
from PIL import Image

from tfds_flickr27 import annotations as ann
from tfds_flickr27 import archive as archive_lib
from tfds_flickr27 import checks
from tfds_flickr27 import download as download_lib
from tfds_flickr27 import splits as splits_lib
from tfds_flickr27.names import ARCHIVE_NAME, CROPS, DATASET_NAME, IMAGES, URL

CROP_JPEG_QUALITY = 95

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
        label = tfds.features.ClassLabel(names=ann.LABEL_NAMES)
        image = tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg")
        if self.builder_config.kind == IMAGES:
            features = {
                "image": image,
                "label": label,
                "labels": tfds.features.Sequence(label),
                "objects": tfds.features.Sequence(
                    {"bbox": tfds.features.BBoxFeature(), "label": label}
                ),
                "filename": tfds.features.Text(),
            }
        else:
            features = {
                "image": image,
                "label": label,
                "bbox": tfds.features.BBoxFeature(),
                "filename": tfds.features.Text(),
            }
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(features),
            supervised_keys=("image", "label"),
            homepage="http://image.ntua.gr/iva/datasets/flickr_logos/",
            metadata=tfds.core.MetadataDict(),
        )

    def _archive_path(self, dl_manager: tfds.download.DownloadManager) -> os.PathLike:
        """The manual-dir copy if present, else the download; a clear error if neither."""
        try:
            manual_dir = dl_manager.manual_dir
        except (AssertionError, ValueError):
            manual_dir = None
        try:
            return download_lib.archive_path(manual_dir, dl_manager.download)
        except Exception as error:  # noqa: BLE001 - any download failure gets the same advice
            default = getattr(dl_manager, "_manual_dir", None) or "<data_dir>/downloads/manual"
            raise RuntimeError(
                f"flickr_logos27: cannot download {URL} ({type(error).__name__}: {error}). "
                f"Put {ARCHIVE_NAME} in a directory DIR and pass `--manual_dir DIR`, or copy it "
                f"to the default manual dir {default}/{ARCHIVE_NAME}."
            ) from error

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        path = self._archive_path(dl_manager)
        index, report = checks.check(
            archive_lib.scan(path), path, self.builder_config.max_skipped_fraction
        )
        # Saved as metadata.json next to dataset_info.json: builder.info.metadata.
        self.info.metadata.update(report.as_metadata())
        if self.builder_config.kind == IMAGES:
            plan = splits_lib.plan(index, [("validation", 0.2)], leak_split=splits_lib.EXCLUDED)
            left_out = sorted(f for f, s in plan.items() if s == splits_lib.EXCLUDED)
            log.warning(
                "flickr_logos27/images: %d training images left out (byte-identical to a "
                "query image): %s",
                len(left_out),
                left_out,
            )
            return {
                "train": self._generate_examples(path, index, _files(plan, "train")),
                "validation": self._generate_examples(path, index, _files(plan, "validation")),
                "test": self._generate_examples(path, index, set(index.query), query=True),
            }
        plan = splits_lib.plan(index, [("validation", 0.15), ("test", 0.15)], leak_split="test")
        return {
            split: self._generate_examples(path, index, _files(plan, split))
            for split in ("train", "validation", "test")
        }

    def _generate_examples(
        self, path, index: archive_lib.ArchiveIndex, files: set[str], query: bool = False
    ):
        """Yields the examples of the ``files`` (query-set images when ``query``)."""
        if query:
            return self._generate_queries(path, index.query)
        if self.builder_config.kind == IMAGES:
            return self._generate_images(path, index, files)
        return self._generate_crops(path, index, files)

    def _generate_images(self, path, index: archive_lib.ArchiveIndex, files: set[str]):
        boxes = _boxes_by_file(index)
        for filename, data in archive_lib.iter_images(path, files):
            width, height = index.size[filename]
            labels = index.training.labels[filename]
            own = boxes.get(filename, [])
            yield (
                filename,
                {
                    "image": data,
                    "label": ann.primary_label(own, labels),
                    "labels": labels,
                    "objects": [
                        {"bbox": _bbox(box, width, height), "label": box.label} for box in own
                    ],
                    "filename": filename,
                },
            )

    def _generate_queries(self, path, queries: dict[str, str]):
        for filename, data in archive_lib.iter_images(path, queries):
            label = queries[filename]
            yield (
                filename,
                {
                    "image": data,
                    "label": label,
                    "labels": [] if label == ann.NONE_LABEL else [label],
                    "objects": [],
                    "filename": filename,
                },
            )

    def _generate_crops(self, path, index: archive_lib.ArchiveIndex, files: set[str]):
        config = self.builder_config
        boxes = _boxes_by_file(index)
        for filename, data in archive_lib.iter_images(path, files):
            try:
                with Image.open(io.BytesIO(data)) as source:
                    image = source.convert("RGB")
            except (OSError, SyntaxError, ValueError) as error:  # checked by scan already
                raise archive_lib.ArchiveError(
                    f"{os.fspath(path)}: {archive_lib.IMAGES_ARCHIVE}: {filename}: {error}"
                ) from error
            for box in boxes.get(filename, []):
                window = crop_window(box, image.size, config.margin, config.square)
                buffer = io.BytesIO()
                image.crop(window).save(buffer, format="JPEG", quality=CROP_JPEG_QUALITY)
                key = f"{filename}/{box.label}/{box.x1}_{box.y1}_{box.x2}_{box.y2}"
                yield (
                    key,
                    {
                        "image": buffer.getvalue(),
                        "label": box.label,
                        "bbox": _bbox(box, *image.size),
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


def _bbox(box: ann.Box, width: int, height: int) -> tfds.features.BBox:
    """The box normalized to [0, 1] (clipped to the image)."""

    def clip(value: float) -> float:
        return min(max(value, 0.0), 1.0)

    return tfds.features.BBox(
        ymin=clip(box.y1 / height),
        xmin=clip(box.x1 / width),
        ymax=clip(box.y2 / height),
        xmax=clip(box.x2 / width),
    )


def crop_window(
    box: ann.Box, size: tuple[int, int], margin: float, square: bool
) -> tuple[int, int, int, int]:
    """The crop ``(left, top, right, bottom)`` around ``box`` in an image of ``size``.

    The window is centred on the box, made square (side = the box's longest side) when
    ``square``, grown by ``margin`` times its side on each side, then shifted to lie in
    the image; only a window larger than the image is clipped.
    """
    spans = []
    for low, high, limit in ((box.x1, box.x2, size[0]), (box.y1, box.y2, size[1])):
        side = max(box.x2 - box.x1, box.y2 - box.y1) if square else high - low
        side = min(side * (1 + 2 * margin), limit)
        start = min(max((low + high) / 2 - side / 2, 0), limit - side)
        spans.append((round(start), max(round(start + side), round(start) + 1)))
    (left, right), (top, bottom) = spans
    return left, top, min(right, size[0]), min(bottom, size[1])
