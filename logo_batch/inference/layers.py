"""Keras layers saved inside model bundles (registered for safe-mode loading)."""

from __future__ import annotations

import keras

# Per-backbone input scaling, applied to float pixels in [0, 255].
#   "tf":    [-1, 1]            (MobileNetV2)
#   "caffe": BGR, ImageNet mean (ResNet50)
#   "none":  unchanged          (EfficientNet, MobileNetV3 scale internally)
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="logo_batch")
class ScalePixels(keras.layers.Layer):
    """Scales ``[0, 255]`` pixels to the range a backbone was trained on."""

    def __init__(self, mode: str = "tf", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("tf", "caffe", "none"):
            raise ValueError(f"ScalePixels mode must be tf, caffe or none, not {mode!r}")
        self.mode = mode

    def call(self, inputs):
        x = keras.ops.cast(inputs, self.compute_dtype)
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "caffe":
            x = keras.ops.flip(x, axis=-1)
            return x - keras.ops.convert_to_tensor(_CAFFE_MEAN_BGR, dtype=self.compute_dtype)
        return x

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
