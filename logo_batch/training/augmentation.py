"""Where a run augments: in the tf.data pipeline (``--augment-on cpu``) or in the
training step, on the accelerator (``--augment-on device``).

With ``device`` the tf.data pipeline only decodes, caches, shuffles and batches; the same
augmentation as on the CPU (:func:`run_augmentation`: the same layers, strengths and
seed) runs at the start of the model's training step, on the replica's device, in
float32. The model stays the plain classifier: nothing is added to its layers or
weights, so checkpoints, resuming, the exported bundle, evaluation and prediction
(which never run the training step) are the same as with CPU augmentation, and a run
may resume with the other choice.

XLA: the geometric layers (zoom, shift, rotation) use ``ImageProjectiveTransformV3``,
which has no XLA kernel, so augmentation runs outside XLA and the rest of the step
(forward, backward, update) is compiled by XLA as a nested function. With several
replicas in sync TensorFlow cannot nest a function holding the gradients' all-reduce
in the replica step, so there the step runs without XLA.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import keras
import tensorflow as tf

from logo_batch.training.augment import AugmentConfig, make_augment_fn
from logo_batch.training.config import TrainConfig

Augment = Callable[[tf.Tensor], tf.Tensor]


def run_augmentation(cfg: TrainConfig) -> Augment:
    """The run's augmentation, wherever it runs: batch float32 [0, 255] in and out.

    Build it where its random state should live: on the CPU path before the
    pipeline, on the device path in the strategy's scope (the seed state of each
    layer is a variable, mirrored like the model's).
    """
    return make_augment_fn(
        AugmentConfig(blur=cfg.blur, low_res=cfg.low_res, method=cfg.augmentation), seed=cfg.seed
    )


def augment_in_train_step(
    model: keras.Model, augment: Augment, *, jit: bool, replicas: int = 1
) -> bool:
    """Makes ``model.fit`` augment each batch's images inside the training step.

    Only this model object's training step changes (``evaluate`` and ``predict``
    never augment); the model's layers, weights and saved files are untouched.
    Compile the model with ``jit_compile=False`` afterwards: when ``jit`` the step
    compiles its non-augmentation part with XLA itself. Returns whether it does
    (not with several ``replicas``: see the module docstring).
    """
    xla = jit and replicas == 1

    def train_step(data):
        images, *rest = data
        step = functools.partial(type(model).train_step, model)
        if xla:  # a new function for each train function Keras traces: each compile
            # brings its own optimizer and trainable variables, never an old trace's
            step = tf.function(step, jit_compile=True)
        return step((augment(images), *rest))

    model.train_step = train_step  # an instance attribute: not a layer, never saved
    return xla
