"""The multi-worker Keras work-around refuses Keras versions it was not checked against."""

from __future__ import annotations

import pytest

from logo_batch.training import keras_compat


def test_the_installed_keras_is_supported():
    keras_compat.check_keras_version()  # the versions pinned are the ones the suite runs


@pytest.mark.parametrize("version", ["3.11.0", "3.15.1", "3.15.2rc1"])
def test_supported_versions_pass(version: str):
    keras_compat.check_keras_version(version)


@pytest.mark.parametrize("version", ["3.10.0", "3.16.0", "4.0.0", "2.15.0", "nightly"])
def test_other_versions_fail_with_a_clear_message(version: str):
    with pytest.raises(keras_compat.UnsupportedKerasError) as error:
        keras_compat.check_keras_version(version)
    message = str(error.value)
    assert f"Keras {version} is installed" in message and ">= 3.11, < 3.16" in message
    assert "--strategy" in message
