"""Shared benchmark plumbing: data preparation, timing, peak RSS, result tables."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"  # where the real archive is, when it is


@dataclass
class Row:
    """One measured figure: what, how fast, and its ratio to the baseline."""

    name: str
    value: float
    unit: str
    ratio: float | None = None
    baseline: str = ""
    note: str = ""


@dataclass
class Section:
    """One benchmark's rows, with the target it is held to."""

    title: str
    rows: list[Row] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [
            f"### {self.title}",
            "",
            "| measurement | value | ratio | note |",
            "|---|---|---|---|",
        ]
        for row in self.rows:
            ratio = "" if row.ratio is None else f"{row.ratio:.2f}x {row.baseline}".strip()
            lines.append(f"| {row.name} | {row.value:,.2f} {row.unit} | {ratio} | {row.note} |")
        for target in self.targets:
            lines.append(f"\n- {target}")
        for note in self.notes:
            lines.append(f"\n{note}")
        return "\n".join(lines) + "\n"

    def text(self) -> str:
        out = [f"== {self.title}"]
        for row in self.rows:
            ratio = "" if row.ratio is None else f"  ({row.ratio:.2f}x {row.baseline})"
            note = f"  [{row.note}]" if row.note else ""
            out.append(f"  {row.name:<52} {row.value:>12,.2f} {row.unit}{ratio}{note}")
        out.extend(f"  {target}" for target in self.targets)
        return "\n".join(out)


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    """Runs ``fn`` once; returns (seconds, result)."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def cpu_timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    """Runs ``fn`` once; returns (wall seconds, CPU seconds of this process, result)."""
    cpu = time.process_time()
    seconds, result = timed(fn)
    return seconds, time.process_time() - cpu, result


def cpu_rate(run: Callable[[], int]) -> tuple[float, float]:
    """Runs ``run`` (it returns an image count); (images/s, images per CPU-second of
    this process, all its threads)."""
    seconds, cpu, count = cpu_timed(run)
    return count / seconds, count / cpu


def median(values) -> float:
    return float(statistics.median(values))


def per_cpu_of(rates: dict[str, list[tuple[float, float]]], name: str) -> float:
    """The median images/CPU-s of one variant measured by rounds of :func:`cpu_rate`."""
    return median([r[1] for r in rates[name]])


def count_images(ds, max_batches: int | None = None) -> int:
    """Iterates a batched dataset (the work is done), returning how many images it gave
    (of at most ``max_batches`` batches)."""
    total = 0
    for i, batch in enumerate(ds):
        if max_batches is not None and i >= max_batches:
            break
        total += int(batch[0].shape[0])
    return total


def real_archive() -> Path:
    """Where the real FlickrLogos-27 archive is when it is there (``../shared/data``).

    A function, not a constant: importing the dataset package imports TensorFlow,
    which must wait until the benchmark has set ``TF_CPP_MIN_LOG_LEVEL``.
    """
    from tfds_flickr27 import ARCHIVE_NAME

    return SHARED_DATA / ARCHIVE_NAME


def data_source(archive: str | None) -> tuple[Path, str]:
    """The archive to benchmark on: the given one, else the real one, else generated."""
    if archive:
        return Path(archive), "given archive"
    if real_archive().is_file():
        return real_archive(), "real FlickrLogos-27"
    return Path(), "generated"


def extract_images(archive: Path, target: Path) -> list[Path]:
    """Extracts the archive's JPEGs to ``target`` (once); returns their paths."""
    from tfds_flickr27.archive import extract_images, scan

    if not (target.is_dir() and any(target.iterdir())):
        extract_images(archive, scan(archive).sha256, target)
    return sorted(target.glob("*.jpg"))


def replicate_folder(images: Sequence[Path], target: Path, count: int) -> list[Path]:
    """Hard-links ``images`` under new names until ``count`` files exist in ``target``."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    out = []
    for i in range(count):
        source = images[i % len(images)]
        dest = target / f"r{i // len(images):02d}_{source.name}"
        os.link(source, dest)
        out.append(dest)
    return out


def upscaled_photos(photos: Sequence[Path], target: Path, long_side: int) -> list[Path]:
    """Each photo resized to ``long_side`` px on its long side (Lanczos), as a JPEG of
    quality 90 in ``target`` (made once): camera-size stand-ins for real photos."""
    from PIL import Image

    target.mkdir(parents=True, exist_ok=True)
    out = []
    for photo in photos:
        path = target / photo.name
        if not path.is_file():
            image = Image.open(photo).convert("RGB")
            scale = long_side / max(image.size)
            size = (round(image.width * scale), round(image.height * scale))
            partial = path.with_suffix(".partial")
            image.resize(size, Image.Resampling.LANCZOS).save(partial, "JPEG", quality=90)
            partial.rename(path)
        out.append(path)
    return out


def replicate_archive(archive: Path, target: Path, factor: int) -> Path:
    """Writes an archive with every training image ``factor`` times under new names.

    Used for the memory benchmark at 4x the data: same layout, same annotations
    repeated for the copies (distinct names, so the builder treats them as new images
    apart from its duplicate grouping).
    """
    import io

    from tfds_flickr27.archive import IMAGES_ARCHIVE, TRAINING_FILE

    members: dict[str, bytes] = {}
    with tarfile.open(archive, "r|gz") as outer:
        for member in outer:
            if member.isfile():
                members[member.name] = outer.extractfile(member).read()
    names = {Path(n).name: n for n in members}
    images_key = names[IMAGES_ARCHIVE]
    train_key = names[TRAINING_FILE]
    inner_out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(members[images_key]), mode="r:gz") as inner,
        tarfile.open(fileobj=inner_out, mode="w:gz") as new_inner,
    ):
        for image in inner.getmembers():
            data = inner.extractfile(image).read() if image.isfile() else None
            for copy in range(factor):
                info = tarfile.TarInfo(image.name)
                if data is None:
                    info.type = image.type
                    if copy == 0:
                        new_inner.addfile(info)
                    continue
                stem = Path(image.name)
                suffix = "" if copy == 0 else f"x{copy}"
                info.name = str(stem.with_name(f"{stem.stem}{suffix}{stem.suffix}"))
                # A byte after the JPEG's end marker: still the same picture, but not
                # byte-identical, so the builder does not group the copies as duplicates.
                payload = data if copy == 0 else data + bytes([copy])
                info.size = len(payload)
                new_inner.addfile(info, io.BytesIO(payload))
    rows = members[train_key].decode("ascii").splitlines(keepends=True)
    new_rows = list(rows)
    for copy in range(1, factor):
        for row in rows:
            name, rest = row.split(" ", 1)
            stem, suffix = name.rsplit(".", 1)
            new_rows.append(f"{stem}x{copy}.{suffix} {rest}")
    members[images_key] = inner_out.getvalue()
    members[train_key] = "".join(new_rows).encode("ascii")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(target, "w:gz") as out:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    return target


def peak_rss_of_command(
    command: Sequence[str], *, env: dict | None = None, log: Path | None = None
) -> tuple[float, float, int]:
    """Runs a command; returns (seconds, peak RSS in MiB summed over its process tree, exit code).

    RSS is sampled every 50 ms over the process and all its descendants (Beam and
    tf.data start worker processes and threads), which is what a machine must hold.
    """
    import psutil

    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115
    start = time.perf_counter()
    proc = subprocess.Popen(list(command), env=env, stdout=out, stderr=subprocess.STDOUT)
    root = psutil.Process(proc.pid)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
                total = 0
                for p in procs:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
                peak = max(peak, total)
            except psutil.Error:
                pass
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = proc.wait()
    done.set()
    sampler.join()
    if log:
        out.close()
    return time.perf_counter() - start, peak / 2**20, code


def runner_mode_of(count: int, beam_args: Sequence[str]) -> list[str]:
    """Runner options that make a short Beam run use the runner a ``count``-file run
    chooses (small local runs run in one process: ``beam_jobs.runner.SMALL_RUN_FILES``),
    so a steady state taken as the difference of the two compares like with like."""
    from beam_jobs.runner import SMALL_RUN_FILES

    if count < SMALL_RUN_FILES or any(a.startswith("--direct_") for a in beam_args):
        return []
    return ["--direct_running_mode", "multi_processing"]


def run_command(command: list[str], stdout: Path, log: Path | None = None) -> float:
    """Runs a command as a user would (its own process), its standard output to
    ``stdout`` and its errors to ``log`` (default: ``stdout`` too); seconds. Raises on
    failure."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    start = time.perf_counter()
    with open(stdout, "w") as out, open(log or os.devnull, "w") as err:
        code = subprocess.call(
            command, stdout=out, stderr=err if log else subprocess.STDOUT, env=env
        )
    seconds = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"{command[:4]}... exited {code}; see {log}")
    return seconds


def python_command(*args: str) -> list[str]:
    """A command line running this interpreter."""
    return [sys.executable, *args]


def describe_gpus(tensorflow_gpus: int, nvidia_names: Sequence[str]) -> str:
    """What the results header says about GPUs: how many TensorFlow sees, and the
    names ``nvidia-smi`` gives (a GPU TensorFlow cannot use is said so)."""
    names = f" ({', '.join(nvidia_names)})" if nvidia_names else ""
    if tensorflow_gpus:
        return f"{tensorflow_gpus} GPU(s) used by TensorFlow{names}"
    if nvidia_names:
        return f"no GPU used by TensorFlow, though nvidia-smi lists{names}"
    return "no GPU"


def gpu_summary() -> str:
    """:func:`describe_gpus` for this machine (``tf.config`` and ``nvidia-smi``)."""
    import tensorflow as tf

    names: list[str] = []
    if shutil.which("nvidia-smi"):
        try:
            listed = subprocess.run(
                ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            names = [line.strip() for line in listed.stdout.splitlines() if line.strip()]
        except (OSError, subprocess.SubprocessError):
            pass
    return describe_gpus(len(tf.config.list_physical_devices("GPU")), names)


def verdict(ok: bool) -> str:
    """How a target reads in the results."""
    return "met" if ok else "NOT met"
