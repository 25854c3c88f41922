"""Apache Beam jobs of logo-batch: ``classify_images`` classifies image folders into CSV.

Importing the package imports nothing (importing one small module of it loads no
TensorFlow). The job's entry point (:mod:`beam_jobs.classify_images`) loads TensorFlow,
Keras and Beam with their start-up lines captured.
"""
