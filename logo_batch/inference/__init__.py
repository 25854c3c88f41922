"""The inference core: decode and preprocess images, open bundles, pick and load the
engine for ``--precision``, score windows of whole photos, build result rows.

It imports neither training, the data pipelines nor any command-line code, so the
commands, the Beam job and the benchmarks all stand on it. Import the modules
themselves (``from logo_batch.inference.predict import predict_files``): this package
re-exports nothing and imports nothing heavy.
"""
