"""This CPU's float32 peak (FLOP/s) and a Keras model's multiply-adds: how far an engine
is from what the machine can do.

Peak = cores x SIMD lanes x FMA units x 2 (a fused multiply-add is 2 FLOPs) x clock, each
read as :func:`cpu_peak` says: cores from the process's affinity mask; lanes from the
kernel's CPU flags (16 float32 lanes with ``avx512f``, 8 with ``avx2``, 4 with ``sse``);
FMA units per core: 2 on x86 cores with ``fma`` (Intel since Haswell, AMD since Zen 2),
except AMD's AVX-512, which runs a 512-bit FMA as two 256-bit halves (Zen 4): 16 lanes x
1; the clock from ``/proc/cpuinfo`` (``cpu MHz``: the nominal clock in a VM; boost
clocks are not visible there, so the fraction is an upper bound).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tfds_flickr27.parallel import cpu_count


@dataclass(frozen=True)
class CpuPeak:
    model: str
    cores: int
    lanes: int  # float32 lanes per FMA instruction
    fma_units: int
    ghz: float

    @property
    def gflops(self) -> float:
        return self.cores * self.lanes * self.fma_units * 2 * self.ghz

    def describe(self) -> str:
        return (
            f"{self.model}: {self.cores} cores x {self.lanes} float32 lanes x "
            f"{self.fma_units} FMA units x 2 FLOPs x {self.ghz:.2f} GHz = {self.gflops:.0f} GFLOP/s"
        )


def cpu_peak(cpuinfo: str | None = None) -> CpuPeak:
    """This machine's :class:`CpuPeak` (``cpuinfo``: ``/proc/cpuinfo`` text, for tests)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    flags = set(fields.get("flags", "").split())
    amd = fields.get("vendor_id", "") == "AuthenticAMD"
    if "avx512f" in flags:
        lanes, units = 16, 1 if amd else 2
    elif "avx2" in flags:
        lanes, units = 8, 2 if "fma" in flags else 1
    else:
        lanes, units = 4, 1
    mhz = float(fields.get("cpu MHz", "0") or 0)
    return CpuPeak(fields.get("model name", "unknown CPU"), cpu_count(), lanes, units, mhz / 1000)


def multiply_adds(model) -> int:
    """Multiply-adds of one forward pass of a Keras model (batch of one): convolutions,
    depthwise convolutions and dense layers (nested models included); the rest (adds,
    activations, pooling) is a few percent of MobileNetV2's and not counted."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += multiply_adds(layer)
            continue
        if not layer.weights:
            continue
        out = layer.output.shape
        kernel = layer.weights[0].shape
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            total += out[1] * out[2] * out[3] * kernel[0] * kernel[1]
        elif isinstance(layer, keras.layers.Conv2D):
            total += out[1] * out[2] * out[3] * kernel[0] * kernel[1] * kernel[2]
        elif isinstance(layer, keras.layers.Dense):
            total += kernel[0] * kernel[1]
    return int(total)
