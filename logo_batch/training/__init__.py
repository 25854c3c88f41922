"""Training: ``train(TrainConfig) -> TrainResult`` and ``logo-batch train``.

Two phases by default: the head on a frozen backbone, then fine-tuning of the top of
the backbone at a lower learning rate (BatchNorm in inference mode). With a pretrained
backbone and the default head, the head phase is a linear probe fitted on pooled
features computed once (LP-FT), and augmentation starts with fine-tuning. The ``seed``
head reproduces the article's recipe: one phase, frozen base, constant-rate Adam.

Fault tolerance: each phase has its own ``BackupAndRestore`` folder and
``state.json`` records finished phases and a finished run, so rerunning the same
command after a crash resumes where it stopped, and rerunning a finished run changes
nothing. Everything lands in the output folder (``history.csv``,
``training_curves.png``, ``logs/``, ``test_*``, ``bundle/``). In a multi-worker
cluster the chief writes there; other workers write to ``.workers/<task>/`` inside it.

Modules, in the order a run uses them: ``config`` (options, recipe defaults,
validation), ``run_folder`` (state, history, result), ``datasets`` (tf.data
pipelines), ``phases`` (the phase loop) with ``fitting`` (compile, callbacks) and
``linear_probe`` (the head on frozen features), ``export`` (metrics and bundle),
``trainer`` (``train()``), ``cli`` (``logo-batch train``).
"""

from logo_batch.training.config import TrainConfig
from logo_batch.training.run_folder import TrainResult
from logo_batch.training.trainer import train

__all__ = ["TrainConfig", "TrainResult", "train"]
