"""Benchmark 5: peak memory at 1x and 4x the data.

Each job runs as its own process (peak RSS summed over its process tree, sampled
every 50 ms): the trainer (memory cache and file cache), the Beam job, and the
article's loader. What grows with the data and what does not is the point.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.common import Row, Section, peak_rss_of_command, python_command, verdict


def _measure(name: str, command: list[str], log: Path) -> tuple[float, float]:
    seconds, peak, code = peak_rss_of_command(command, log=log)
    if code != 0:
        raise RuntimeError(f"{name} failed with exit code {code}; see {log}")
    return seconds, peak


def trainer_command(data_dir: Path, out: Path, image_size: int, cache: str) -> list[str]:
    """One epoch of the default model on the images config (the trainer's CLI)."""
    return python_command(
        "-m",
        "logo_batch.cli",
        "train",
        "--data-dir",
        str(data_dir),
        "--config",
        "images",
        "--image-size",
        str(image_size),
        "--weights",
        "none",
        "--epochs",
        "1",
        "--fine-tune-epochs",
        "0",
        "--batch-size",
        "32",
        "--cache",
        cache,
        "--output-dir",
        str(out),
        "--no-serving-export",
    )


def beam_command(folder: Path, bundle: Path, out: Path) -> list[str]:
    """The Beam job on a folder, local runner defaults."""
    return python_command(
        "-m",
        "beam_jobs.classify_images",
        "--input",
        str(folder),
        "--model",
        str(bundle),
        "--output",
        str(out),
    )


def article_command(folder: Path, image_size: int) -> list[str]:
    """The article's loader over every JPEG of a folder."""
    code = (
        "import sys; from pathlib import Path; "
        "from benchmarks.bench_pipeline import article_loader; "
        f"a = article_loader(sorted(Path(sys.argv[1]).glob('*.jpg')), {image_size}); "
        "print(a.shape)"
    )
    return python_command("-c", code, str(folder))


def bench_memory(
    *,
    work: Path,
    data_dirs: dict[str, Path],
    folders: dict[str, Path],
    bundle: Path,
    image_size: int,
) -> Section:
    """Peak RSS of each job at 1x and 4x; ``data_dirs``/``folders`` keyed "1x" and "4x"."""
    section = Section("5. Memory: peak RSS at 1x and 4x the data")
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, float]] = {}
    jobs = {
        "trainer, memory cache": lambda s: trainer_command(
            data_dirs[s], work / f"train_mem_{s}", image_size, "memory"
        ),
        "trainer, file cache": lambda s: trainer_command(
            data_dirs[s], work / f"train_file_{s}", image_size, str(work / f"cache_{s}")
        ),
        "Beam job": lambda s: beam_command(folders[s], bundle, work / f"beam_{s}.csv"),
        "article loader": lambda s: article_command(folders[s], image_size),
    }
    for name, command in jobs.items():
        results[name] = {}
        for scale in ("1x", "4x"):
            slug = name.replace(" ", "_").replace(",", "")
            _, peak = _measure(name, command(scale), logs / f"{slug}_{scale}.log")
            results[name][scale] = peak
        one, four = results[name]["1x"], results[name]["4x"]
        section.rows.append(Row(f"{name}, 1x", one, "MiB"))
        section.rows.append(Row(f"{name}, 4x", four, "MiB", four / one, "1x"))
    beam = results["Beam job"]
    section.targets = [
        f"target Beam job 4x within 10% of 1x: {verdict(beam['4x'] <= 1.10 * beam['1x'])} "
        f"({beam['4x'] / beam['1x']:.2f}x)"
    ]
    return section
