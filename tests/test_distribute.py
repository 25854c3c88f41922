"""``distribute.task_info``: this process's role from ``TF_CONFIG``."""

from __future__ import annotations

import json

import pytest

from logo_batch.distribute import TaskInfo, task_info


def _set(monkeypatch: pytest.MonkeyPatch, cluster=None, task=None) -> None:
    config = {}
    if cluster is not None:
        config["cluster"] = cluster
    if task is not None:
        config["task"] = task
    monkeypatch.setenv("TF_CONFIG", json.dumps(config))


def test_without_tf_config_a_single_chief(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    info = task_info()
    assert info == TaskInfo(None, 0, 1) and info.is_chief and info.name == "chief"
    monkeypatch.setenv("TF_CONFIG", "")
    assert task_info() == TaskInfo(None, 0, 1)


def test_workers_only_worker_0_is_the_chief(monkeypatch: pytest.MonkeyPatch):
    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    _set(monkeypatch, cluster, {"type": "worker", "index": 0})
    first = task_info()
    assert first == TaskInfo("worker", 0, 2, False) and first.is_chief
    _set(monkeypatch, cluster, {"type": "worker", "index": 1})
    second = task_info()
    assert second == TaskInfo("worker", 1, 2, False) and not second.is_chief
    assert second.name == "worker_1"


def test_a_chief_task_is_the_chief_and_counts_as_a_worker(monkeypatch: pytest.MonkeyPatch):
    cluster = {"chief": ["h:0"], "worker": ["h:1", "h:2"], "evaluator": ["h:3"], "ps": ["h:4"]}
    _set(monkeypatch, cluster, {"type": "chief", "index": 0})
    chief = task_info()
    assert chief == TaskInfo("chief", 0, 3, True) and chief.is_chief and chief.name == "chief_0"
    _set(monkeypatch, cluster, {"type": "worker", "index": 0})
    worker = task_info()
    assert worker == TaskInfo("worker", 0, 3, True) and not worker.is_chief


def test_partial_configs(monkeypatch: pytest.MonkeyPatch):
    _set(monkeypatch, {"worker": ["h:1", "h:2"]}, {"type": "worker"})  # no index: 0
    assert task_info() == TaskInfo("worker", 0, 2, False)
    _set(monkeypatch, {"worker": ["h:1", "h:2"]})  # no task: the chief
    assert task_info() == TaskInfo(None, 0, 2, False) and task_info().is_chief
    _set(monkeypatch, task={"type": "worker", "index": 3})  # no cluster: one worker
    assert task_info() == TaskInfo("worker", 3, 1, False)


def test_invalid_json_is_a_clear_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        task_info()
