"""What this machine offers for low-precision math: the CPU's units, oneDNN, a GPU.

:func:`cpu_features` reads the CPU's flags (``/proc/cpuinfo``). Inference
(:mod:`logo_batch.inference.engines`: is there an int8 dot-product unit?) and training
(:mod:`logo_batch.training.distribute`: is bfloat16 fast here?) both decide from it.
AVX-512 BF16 alone (AMD Zen 4 and later, Intel Cooper Lake) is not enough for bfloat16:
on an AMD EPYC with it and oneDNN on, a MobileNetV2 training step ran at 0.87x float32
per CPU-second and inference at 0.85x (benchmarks/RESULTS.md section 6).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

BFLOAT16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo: bfloat16 matrix/vector units
FAST_BFLOAT16_FLAGS = ("amx_bf16",)  # where bfloat16 measured faster than float32
INT8_FLAGS = ("amx_int8", "avx512_vnni", "avx_vnni")  # int8 dot products
CPUINFO = "/proc/cpuinfo"


# Where a Linux kernel shows a GPU TensorFlow could use: NVIDIA's driver, ROCm's, WSL's.
GPU_DEVICE_PATHS = ("/proc/driver/nvidia/gpus", "/dev/kfd", "/dev/dxg")


def cpu_count() -> int:
    """The cores this process may run on (its affinity where the OS tells it). The
    dataset layer's builder has its own (``tfds_flickr27.parallel``): importing that
    package registers the builder, importing TensorFlow Datasets (0.3 s), which
    ``predict`` and the Beam job's workers do not need."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def has_gpu() -> bool:
    """True when TensorFlow sees a GPU. On Linux without a GPU driver the answer is no
    without importing TensorFlow (9 s and 680 MB a process on our CPUs)."""
    if sys.platform.startswith("linux") and not any(map(os.path.exists, GPU_DEVICE_PATHS)):
        return False
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


@dataclass(frozen=True)
class CpuFeatures:
    """What this CPU offers for low-precision math."""

    flags: frozenset[str]  # the kernel's feature flags (/proc/cpuinfo)
    onednn: bool  # TensorFlow runs its CPU kernels through oneDNN (which uses AMX, AVX-512)

    @property
    def bfloat16(self) -> tuple[str, ...]:
        """The bfloat16 units present (``amx_bf16``, ``avx512_bf16``)."""
        return tuple(flag for flag in BFLOAT16_FLAGS if flag in self.flags)

    @property
    def int8(self) -> tuple[str, ...]:
        """The int8 dot-product units present (``amx_int8``, ``avx512_vnni``, ``avx_vnni``)."""
        return tuple(flag for flag in INT8_FLAGS if flag in self.flags)

    @property
    def fast_bfloat16(self) -> bool:
        """bfloat16 runs on matrix units here: AMX and oneDNN on. Without oneDNN
        TensorFlow's bfloat16 kernels convert in software; with AVX-512 BF16 alone
        (vector dot products, no tiles) bfloat16 measured slower than float32."""
        return any(flag in self.flags for flag in FAST_BFLOAT16_FLAGS) and self.onednn

    @property
    def vectors(self) -> str:
        """The widest float32 vector units (``AVX-512``, ``AVX2 + FMA``, ...): what sets
        a CPU's float32 speed (AVX-512 and AVX2 machines differ by 2x or more)."""
        if "avx512f" in self.flags:
            return "AVX-512"
        if "avx2" in self.flags:
            return "AVX2 + FMA, no AVX-512" if "fma" in self.flags else "AVX2, no AVX-512"
        if "avx" in self.flags:
            return "AVX, no AVX2"
        if "asimd" in self.flags:
            return "NEON"
        return "SSE" if any(f.startswith("sse") for f in self.flags) else "vector units unknown"

    def describe(self) -> str:
        """One line for logs and benchmark headers."""
        units = ", ".join(self.bfloat16 + self.int8) or "no bfloat16 or int8 units"
        return f"{self.vectors}; {units}; oneDNN {'on' if self.onednn else 'off'}"


def parse_cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The feature flags of the first processor in ``/proc/cpuinfo`` text (x86
    ``flags``, Arm ``Features``); empty when the text has none."""
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def onednn_enabled() -> bool:
    """Whether TensorFlow uses oneDNN for its CPU kernels: TensorFlow's own answer,
    which follows ``TF_ENABLE_ONEDNN_OPTS`` and otherwise its default for this CPU (on
    for x86 CPUs with AVX-512 VNNI, BF16 or AMX)."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:  # a private module: if it moves, read the variable
        return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1").lower() not in ("0", "false")
    return bool(_pywrap_util_port.IsMklEnabled())


def cpu_features(cpuinfo: str | None = None) -> CpuFeatures:
    """This CPU's features: ``cpuinfo`` text, else ``/proc/cpuinfo`` (no flags where
    that file does not exist, e.g. macOS: float32 stays the choice there)."""
    if cpuinfo is None:
        try:
            with open(CPUINFO, encoding="utf-8", errors="replace") as handle:
                cpuinfo = handle.read()
        except OSError:
            cpuinfo = ""
    return CpuFeatures(parse_cpu_flags(cpuinfo), onednn_enabled())
