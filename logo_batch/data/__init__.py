"""Data pipelines over the TFDS dataset: tf.data for training and evaluation
(:mod:`~logo_batch.data.pipeline`), and the extra windows cut from training photos
(:mod:`~logo_batch.data.background`: no logo; :mod:`~logo_batch.data.context`: a logo
with context around it). Import the modules themselves: nothing is re-exported."""
