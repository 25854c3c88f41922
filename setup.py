"""Kept only for Dataflow's ``--setup_file ./setup.py``.

Beam runs ``python setup.py sdist`` with it to ship this package to remote workers.
Every setting (metadata, dependencies, package data, the version) is in
``pyproject.toml``: this bare ``setup()`` reads it from there.
"""

from setuptools import setup

setup()
