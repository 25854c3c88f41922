"""The training configuration: every option of a run and the recipe's defaults."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass

from logo_batch.arguments import check_value, number_in, whole_number
from logo_batch.data import pipeline as data_lib
from logo_batch.evaluation.metrics import DEFAULT_KEEP
from logo_batch.inference.cpu import has_gpu
from logo_batch.training import augment, models

# Fields that must match to resume a run in the same output folder.
RESUME_FIELDS = (
    "dataset", "config", "image_size", "backbone", "head", "dropout", "seed", "background",
    "context", "context_coverage", "low_res", "paste", "grid_windows",
)  # fmt: skip
# The check of each numeric option (`logo-batch train` parses with it, validate() checks
# library calls with it); --batch-size is the shared option's (logo_batch.options).
NUMBER_RULES: dict[str, Callable[[str], float]] = {
    "image_size": whole_number(32),
    "epochs": whole_number(0),
    "fine_tune_epochs": whole_number(0),
    "batch_size": whole_number(1),
    "learning_rate": number_in(0.0, above=True),
    "fine_tune_learning_rate": number_in(0.0, above=True),
    "fine_tune_fraction": number_in(0.0, 1.0, above=True),
    "dropout": number_in(0.0, 1.0, below=True),
    "label_smoothing": number_in(0.0, 1.0, below=True),
    "blur": number_in(0.0),
    "low_res": number_in(0.0, 1.0),
    "paste": whole_number(0),
    "background": whole_number(0),
    "context": whole_number(0),
    "context_coverage": number_in(0.0, 1.0, above=True),
    "shuffle_buffer": whole_number(1),
    "early_stopping_patience": whole_number(1),
    "rejection_keep": number_in(0.0, 1.0, above=True),
    "seed": whole_number(0),
    "steps_per_epoch": whole_number(1),
}
# --augment-on: where augmentation runs. cpu: in the tf.data pipeline; device: in the
# training step on the accelerator (the CPU only decodes); auto: device with a GPU.
AUGMENT_ON_VALUES = ("auto", "cpu", "device")
AUGMENT_CPU, AUGMENT_DEVICE = "cpu", "device"


@dataclass
class TrainConfig:
    """Everything a training run needs; ``None`` fields take the recipe's default."""

    data_dir: str
    output_dir: str
    config: str = "crops"
    dataset: str = data_lib.DATASET_NAME
    image_size: int | None = None  # default 224 (MobileNetV2 native); 128 for the seed head
    backbone: str = "mobilenet_v2"
    weights: str = models.WEIGHTS_IMAGENET
    head: str = "default"
    dropout: float = 0.2
    epochs: int | None = None  # head phase; default 30 on cached features, else 10
    fine_tune_epochs: int | None = None  # default 12; 0 for the seed head
    fine_tune_fraction: float = 0.5
    batch_size: int = 32  # global batch size
    learning_rate: float = 1e-3
    fine_tune_learning_rate: float = 1e-4
    lr_schedule: str | None = None  # cosine (default) or constant (seed)
    label_smoothing: float | None = None  # default 0.1; 0 for the seed head
    class_weights: bool = False
    augment: bool = True
    augment_on: str = "auto"  # cpu, device, or auto (device when a GPU is visible)
    augmentation: str = "fused"  # fused (one warp, one colour matrix) or layers (Keras layers)
    head_on_features: bool = True  # pretrained base + default head: linear-probe first
    # The photo recipe (the default): a class none from 2 no-logo windows per training
    # photo, and 2 windows of scene around each logo box; --crops-only turns both off.
    background: int = 2  # windows with no logo per training photo, learned as class none
    context: int = 2  # windows around each logo box (box = 10-100% of the window), its brand
    context_coverage: float = 0.1  # the smallest share of a context window the box covers
    blur: float = 0.0
    low_res: float = 0.0  # probability a training image is shrunk to a small logo's size
    paste: int = 0  # synthetic windows per training crop: the crop pasted small into a window
    grid_windows: bool = False  # the whole-photo grid's windows of the training photos
    cache: str = data_lib.CACHE_MEMORY  # memory, none, or a folder for file caches
    shuffle_buffer: int = 2048
    early_stopping_patience: int = 5
    rejection_keep: float = DEFAULT_KEEP
    mixed_precision: str = "auto"
    xla: str = "auto"
    strategy: str = "auto"
    seed: int = 42
    steps_per_epoch: int | None = None  # default: training.datasets.steps_per_epoch
    train_split: str = "train"
    validation_split: str = "validation"
    test_split: str = "test"
    export_serving: bool = True
    export_tflite: bool = True  # model.tflite: the float32 TensorFlow Lite engine
    verbose: int | str = "auto"

    def resolved(self) -> TrainConfig:
        """A copy with the recipe defaults filled in."""
        seed_head = self.head == "seed"
        features = head_phase_on_features(self)
        return dataclasses.replace(
            self,
            image_size=(128 if seed_head else 224) if self.image_size is None else self.image_size,
            epochs=(30 if features else 10) if self.epochs is None else self.epochs,
            fine_tune_epochs=(0 if seed_head else 12)
            if self.fine_tune_epochs is None
            else self.fine_tune_epochs,
            lr_schedule=self.lr_schedule or ("constant" if seed_head else "cosine"),
            label_smoothing=(0.0 if seed_head else 0.1)
            if self.label_smoothing is None
            else self.label_smoothing,
        )

    def validate(self) -> None:
        """Raises ``ValueError`` naming the option when a value cannot work (the numbers:
        :data:`NUMBER_RULES`, the checks ``logo-batch train`` makes while parsing)."""
        for name, rule in NUMBER_RULES.items():
            value = getattr(self, name)
            if value is not None:
                check_value(name, value, rule)
        if self.augmentation not in augment.METHODS:
            raise ValueError(
                f"--augmentation must be one of {', '.join(augment.METHODS)}, "
                f"not {self.augmentation!r}"
            )
        if self.augment_on not in AUGMENT_ON_VALUES:
            raise ValueError(
                f"--augment-on must be one of {', '.join(AUGMENT_ON_VALUES)}, "
                f"not {self.augment_on!r}"
            )
        if self.epochs == 0 and self.fine_tune_epochs == 0:
            raise ValueError("--epochs and --fine-tune-epochs are both 0: nothing to train")
        weights = os.fspath(self.weights)
        if weights not in (models.WEIGHTS_IMAGENET, models.WEIGHTS_NONE):
            if not os.path.isfile(weights):
                raise ValueError(
                    f"--weights {weights}: no such file (use imagenet, none, or a weights file)"
                )


def resolve_augment_on(cfg: TrainConfig, gpu: bool | None = None) -> str | None:
    """Where the run augments: ``cpu`` or ``device`` (``auto``: device when TensorFlow
    sees a GPU; ``gpu`` overrides the look), ``None`` without augmentation."""
    if not cfg.augment:
        return None
    if cfg.augment_on != "auto":
        return cfg.augment_on
    return AUGMENT_DEVICE if (has_gpu() if gpu is None else gpu) else AUGMENT_CPU


def head_phase_on_features(cfg: TrainConfig) -> bool:
    """Whether the head phase fits the head on cached features of the frozen base.

    With a pretrained base and a linear head (pooling, dropout, dense), the head
    is a linear probe: it is fitted to convergence on the pooled features of the
    un-augmented training images, computed once (a few KB per image), in seconds
    instead of one full forward pass of the base per epoch. Fine-tuning with
    augmentation follows (LP-FT: Kumar et al., ICLR 2022).
    """
    return (
        cfg.head_on_features
        and cfg.head in models.LINEAR_HEADS
        and os.fspath(cfg.weights) != models.WEIGHTS_NONE
    )
