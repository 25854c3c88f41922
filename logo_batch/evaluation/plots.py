"""PNG figures: training curves (loss and accuracy, train vs validation), confusion matrix."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def plot_history(history: pd.DataFrame, path: str | os.PathLike) -> None:
    """Loss and accuracy per epoch, train vs validation, in two panels."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    epochs = history["epoch"] + 1 if "epoch" in history else np.arange(1, len(history) + 1)
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for key, label in ((metric, "train"), (f"val_{metric}", "validation")):
            if key in history:
                ax.plot(epochs, history[key], marker="o", markersize=3, label=label)
        if "phase" in history and history["phase"].nunique() > 1:
            first_fine = epochs[history["phase"] == "fine_tune"]
            if len(first_fine):
                ax.axvline(first_fine.iloc[0] - 0.5, color="grey", ls="--", lw=1)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(f"training {metric}")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion_matrix(
    matrix: np.ndarray, class_names: Sequence[str], path: str | os.PathLike, title: str = ""
) -> None:
    """Row-normalised confusion matrix (rows: true class, columns: predicted)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    rows = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    size = max(6.0, 0.35 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(normalised, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(class_names)), class_names, rotation=90, fontsize=8)
    ax.set_yticks(range(len(class_names)), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "confusion matrix (row-normalised)")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_rejection_tradeoff(
    curve: dict, chosen: tuple[float, float, float], path: str | os.PathLike, title: str
) -> None:
    """Logo photos correct and accepted vs ``none`` photos rejected as the threshold
    moves (from :func:`logo_batch.evaluation.photo_metrics.tradeoff`), the chosen threshold marked
    (``chosen`` = threshold, none rejected, logo photos correct and accepted)."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot(curve["none_rejected"], curve["logo_accepted_and_correct"], "-", color="tab:blue")
    threshold, rejected, correct = chosen
    ax.plot([rejected], [correct], "o", color="tab:red", label=f"threshold {threshold:.3f}")
    ax.annotate(
        f"{correct:.2f} correct, {rejected:.2f} rejected",
        (rejected, correct),
        textcoords="offset points",
        xytext=(-10, -16),
        ha="right",
    )
    ax.set_xlabel("none photos rejected")
    ax.set_ylabel("logo photos correct and accepted")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
