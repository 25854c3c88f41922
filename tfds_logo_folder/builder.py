"""The TFDS builder of a folder dataset: configs ``images`` and ``crops`` as FlickrLogos-27's.

The dataset's name is the user's, so the builder class is made per name
(:func:`builder_class`) and never registered: it exists only in the process that builds.
Afterwards TFDS reads the prepared files without it (``tfds.load("NAME/crops",
data_dir=D)`` finds them and makes a read-only builder from ``dataset_info.json``).

Examples have ``flickr_logos27``'s features (:func:`tfds_flickr27.features.features`):
``images`` holds whole photos (``photos/`` with their boxes, and in ``test`` the
``none/`` photos, label ``none``, no objects); ``crops`` holds one crop per kept box,
cut as FlickrLogos-27's (:func:`tfds_flickr27.crops.crop_jpegs`, square, 15% margin),
and the ``crops/`` files as they are (``bbox`` the whole image). A file is stored with
its original bytes, or turned upright when its EXIF orientation says so.
"""

from __future__ import annotations

import hashlib
import types
from collections.abc import Iterator

import tensorflow_datasets as tfds

from tfds_flickr27 import features as features_lib
from tfds_flickr27.crops import crop_jpegs
from tfds_flickr27.flickr_logos27_dataset_builder import Flickr27Config
from tfds_flickr27.names import CROPS, IMAGES
from tfds_flickr27.parallel import ordered_map
from tfds_logo_folder.layout import FolderError
from tfds_logo_folder.plan import SPLITS, FolderIndex
from tfds_logo_folder.scan import upright

VERSION = "1.0.0"
WHOLE_IMAGE = tfds.features.BBox(ymin=0.0, xmin=0.0, ymax=1.0, xmax=1.0)


class FolderBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A user's logo folder (:class:`FolderIndex`) as ``images`` and ``crops``."""

    VERSION = tfds.core.Version(VERSION)
    RELEASE_NOTES = {str(VERSION): "Built from a folder by `logo-batch dataset build`."}
    BUILDER_CONFIGS = [
        Flickr27Config(
            name=IMAGES,
            kind=IMAGES,
            description="Whole photos with their boxes; test also holds the none/ photos.",
        ),
        Flickr27Config(
            name=CROPS,
            kind=CROPS,
            description="One crop per box (square, 15% margin), and the crops/ files.",
        ),
    ]

    def __init__(self, *, index: FolderIndex, metadata: dict, **kwargs):
        self.index = index
        self.extra_metadata = metadata
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=f"Logos from the folder {self.index.folder}: "
            f"{len(self.index.brands)} brands, then `none`.",
            features=features_lib.features(self.builder_config.kind, self.index.label_names),
            supervised_keys=("image", "label"),
            metadata=tfds.core.MetadataDict(
                **self.index.report.as_metadata(), **self.extra_metadata
            ),
        )

    def splits(self) -> list[str]:
        """The splits of this config that hold examples (TFDS writes no empty split)."""
        config = self.builder_config.kind
        return [split for split in SPLITS if self.index.files(config, split)]

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        del dl_manager  # the files are read from the folder the index lists
        config = self.builder_config.kind
        return {
            split: self._generate_examples(self.index.files(config, split))
            for split in self.splits()
        }

    def _read(self, name: str) -> bytes:
        """A file's bytes as stored in the dataset; raises if it changed since the scan."""
        facts = self.index.facts[name]
        path = self.index.folder / name
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != facts.sha256:
            raise FolderError(f"{path}: changed while the dataset was being built; build again")
        return upright(data, facts.orientation)

    def _generate_examples(self, files: list[str]) -> Iterator[tuple[str, dict]]:
        if self.builder_config.kind == IMAGES:
            yield from self._photos(files)
        else:
            yield from self._crops(files)

    def _photos(self, files: list[str]) -> Iterator[tuple[str, dict]]:
        index = self.index
        for name, data in zip(files, ordered_map(self._read, files), strict=True):
            width, height = index.facts[name].size
            boxes = index.boxes.get(name, [])
            yield (
                name,
                {
                    "image": data,
                    "label": index.primary(name),
                    "labels": index.labels[name],
                    "objects": [
                        {"bbox": features_lib.bbox(box, width, height), "label": box.label}
                        for box in boxes
                    ],
                    "filename": name,
                },
            )

    def _cut(self, name: str) -> list[bytes]:
        """The file's examples in ``crops``: its boxes' crops, or the crops/ file itself."""
        data = self._read(name)
        if name in self.index.crop_brand:
            return [data]
        config = self.builder_config
        try:
            return crop_jpegs(data, self.index.boxes[name], config.margin, config.square)
        except ValueError as error:
            raise FolderError(f"{self.index.folder / name}: {error}") from None

    def _crops(self, files: list[str]) -> Iterator[tuple[str, dict]]:
        index = self.index
        for name, jpegs in zip(files, ordered_map(self._cut, files), strict=True):
            if name in index.crop_brand:
                example = {"image": jpegs[0], "label": index.crop_brand[name]}
                yield name, {**example, "bbox": WHOLE_IMAGE, "filename": name}
                continue
            size = index.facts[name].size
            for box, jpeg in zip(index.boxes[name], jpegs, strict=True):
                key = f"{name}/{box.label}/{box.x1}_{box.y1}_{box.x2}_{box.y2}"
                yield (
                    key,
                    {
                        "image": jpeg,
                        "label": box.label,
                        "bbox": features_lib.bbox(box, *size),
                        "filename": name,
                    },
                )


def builder_class(name: str) -> type[FolderBuilder]:
    """A :class:`FolderBuilder` whose dataset name is ``name`` (not registered)."""
    return types.new_class(
        "Builder",
        (FolderBuilder,),
        {"skip_registration": True},
        lambda namespace: namespace.update(name=name, __module__=__name__),
    )
