"""Multi-worker training: two local worker processes under MultiWorkerMirroredStrategy.

Each process gets a ``TF_CONFIG`` naming both workers on 127.0.0.1 and runs the
ordinary ``logo-batch train`` command. They must both finish, agree on the final
weights (synchronous all-reduce keeps replicas identical), and only the chief writes
the model bundle.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

TIMEOUT_S = 600


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _weights(path: Path) -> list[np.ndarray]:
    import h5py

    arrays: list[np.ndarray] = []
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda _, obj: arrays.append(np.asarray(obj)) if isinstance(obj, h5py.Dataset) else None
        )
    return arrays


@pytest.mark.slow
def test_two_workers_train_to_completion_and_agree(synthetic_data_dir: Path, tmp_path: Path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "logo_batch.cli", "train",
        "--data-dir", str(synthetic_data_dir), "--config", "crops",
        "--backbone", "tiny_cnn", "--weights", "none", "--image-size", "32",
        "--epochs", "2", "--fine-tune-epochs", "0", "--batch-size", "16",
        # k*B+1 examples: a last partial batch of one example, whatever the generated
        # split sizes are.
        "--train-split", "train[:33]", "--validation-split", "validation[:17]",
        "--strategy", "multi_worker", "--no-serving-export", "--output-dir", str(out),
        "--mixed-precision", "off",  # the same on every CPU (auto follows its bf16 units)
    ]  # fmt: skip
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        env["TF_CONFIG"] = json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}
        )
        log = (tmp_path / f"worker{index}.log").open("w")
        procs.append(
            (subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT), log)
        )
    try:
        codes = [proc.wait(timeout=TIMEOUT_S) for proc, _ in procs]
    finally:
        for proc, log in procs:
            if proc.poll() is None:
                proc.kill()
            log.close()
    logs = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    tails = "".join(f"\n--- worker{i}:\n{log[-3000:]}" for i, log in enumerate(logs))
    assert codes == [0, 0], f"worker exit codes {codes}{tails}"

    # Worker 0 is the chief: it writes the run folder and the bundle; worker 1 its own folder.
    chief_end = out / "checkpoints" / "head_end.weights.h5"
    worker_end = out / ".workers" / "worker_1" / "checkpoints" / "head_end.weights.h5"
    assert chief_end.is_file() and worker_end.is_file()
    chief, worker = _weights(chief_end), _weights(worker_end)
    assert len(chief) == len(worker) > 0
    for a, b in zip(chief, worker, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    metadata = json.loads((out / "bundle" / "metadata.json").read_text())
    # tf.distribute.MultiWorkerMirroredStrategy's class is CollectiveAllReduceStrategy.
    assert metadata["training"]["strategy"] == "CollectiveAllReduceStrategy"
    assert metadata["training"]["replicas"] == 2
    assert not (out / ".workers" / "worker_1" / "bundle").exists()
    # Both workers ran every epoch of the phase, in lockstep.
    for log in logs:
        assert "Epoch 2/2" in log
