"""The features of both configs, shared by every dataset in this layout.

``flickr_logos27`` and the datasets built from a user's folder (``tfds_logo_folder``)
have the same features; only the ``ClassLabel`` names (the brands, then ``none``) differ.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow_datasets as tfds

from tfds_flickr27 import annotations as ann
from tfds_flickr27.names import IMAGES


def features(kind: str, label_names: Sequence[str]) -> tfds.features.FeaturesDict:
    """The features of the ``images`` or ``crops`` config (``kind``) over ``label_names``.

    ``images``: a whole photo, its primary ``label``, all its ``labels`` and its logo
    ``objects`` (bbox, label). ``crops``: one logo crop, its ``label`` and its ``bbox`` in
    the photo. Both: ``filename``, the photo's file name.
    """
    label = tfds.features.ClassLabel(names=list(label_names))
    image = tfds.features.Image(shape=(None, None, 3), encoding_format="jpeg")
    if kind == IMAGES:
        spec = {
            "image": image,
            "label": label,
            "labels": tfds.features.Sequence(label),
            "objects": tfds.features.Sequence(
                {"bbox": tfds.features.BBoxFeature(), "label": label}
            ),
            "filename": tfds.features.Text(),
        }
    else:
        spec = {
            "image": image,
            "label": label,
            "bbox": tfds.features.BBoxFeature(),
            "filename": tfds.features.Text(),
        }
    return tfds.features.FeaturesDict(spec)


def bbox(box: ann.Box, width: int, height: int) -> tfds.features.BBox:
    """The box normalized to [0, 1] (clipped to the image)."""

    def clip(value: float) -> float:
        return min(max(value, 0.0), 1.0)

    return tfds.features.BBox(
        ymin=clip(box.y1 / height),
        xmin=clip(box.x1 / width),
        ymax=clip(box.y2 / height),
        xmax=clip(box.x2 / width),
    )
