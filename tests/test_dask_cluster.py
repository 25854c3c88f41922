"""The Dask runner: its translation (streamed chains, partitions that follow the data, side
inputs once, finish_bundle kept), and the job on a real cluster started with the ``dask``
command line, as a user starts one, with 4 GB workers."""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.windowed_value import WindowedValue
from beam_support import IN_PROCESS, make_bundle, read_csv
from image_files import noise_jpeg, truncated_jpeg

distributed = pytest.importorskip("distributed")

from beam_jobs import job  # noqa: E402  (after the skip: the runner needs dask)
from beam_jobs.dask_runner import BoundedDaskRunner  # noqa: E402
from beam_jobs.model import FailedInput, infer_scores  # noqa: E402
from logo_batch.inference.engines import predict_scores  # noqa: E402

ALIVE = {"now": 0, "peak": 0}


class _Big:
    """Counts how many of its kind exist at once (a decoded image stands in for it)."""

    def __init__(self):
        ALIVE["now"] += 1
        ALIVE["peak"] = max(ALIVE["peak"], ALIVE["now"])

    def __del__(self):
        ALIVE["now"] -= 1


class _CountAtFinish(beam.DoFn):
    """Emits only from finish_bundle: how many elements its bundle had."""

    def start_bundle(self):
        self.count = 0

    def process(self, element):
        self.count += 1
        return []

    def finish_bundle(self):
        yield WindowedValue(self.count, -1, [GlobalWindow()])


@pytest.fixture(scope="module")
def local_cluster():
    """Workers in this process (threads): the runner's translation, fast."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        yield cluster


def _run(cluster, build, least: int = 4) -> BoundedDaskRunner:
    runner = BoundedDaskRunner(least_partitions=lambda client: least)
    options = PipelineOptions(["--dask_client_address", cluster.scheduler_address])
    pipeline = beam.Pipeline(runner=runner, options=options)
    build(pipeline)
    result = pipeline.run()
    try:
        result.wait_until_finish()
    finally:
        result.client.close()
    return runner


def test_elements_stream_through_a_chain_one_at_a_time(local_cluster):
    ALIVE.update(now=0, peak=0)

    def build(p):
        total = (
            p
            | beam.Create([None])
            | "Make" >> beam.FlatMap(lambda _: (_Big() for _ in range(300)))
            | "Use" >> beam.Map(lambda big: 1)
            | beam.CombineGlobally(sum)
        )
        assert_that(total, equal_to([300]))

    _run(local_cluster, build)
    assert ALIVE["peak"] < 10  # Beam's own translation holds all 300 of the partition


def test_the_job_counts_without_gathering_the_elements(local_cluster):
    """Beam's Count.Globally would group all 300 under one key in one worker here."""
    from beam_jobs.counts import CountGlobally

    ALIVE.update(now=0, peak=0)

    def build(p):
        total = (
            p
            | beam.Create([None])
            | "Make" >> beam.FlatMap(lambda _: (_Big() for _ in range(300)))
            | "Count" >> CountGlobally()
        )
        assert_that(total, equal_to([300]))

    _run(local_cluster, build)
    assert ALIVE["peak"] < 10


def test_a_fan_out_is_split_side_inputs_and_finish_bundle_outputs_count(local_cluster):
    count = 5000

    def build(p):
        numbers = p | beam.Create([count]) | "Expand" >> beam.FlatMap(lambda n: list(range(n)))
        total = numbers | "Total" >> beam.combiners.Count.Globally()
        grouped = (
            numbers
            | "Key" >> beam.Map(lambda x, n: (x % 7, n), n=beam.pvalue.AsSingleton(total))
            | beam.GroupByKey()
            | "Sizes" >> beam.Map(lambda kv: (kv[0], len(kv[1]), set(kv[1])))
        )
        expected = [(k, len(range(k, count, 7)), {count}) for k in range(7)]
        assert_that(grouped, equal_to(expected), label="Groups")
        finished = numbers | beam.ParDo(_CountAtFinish()) | "Sum" >> beam.CombineGlobally(sum)
        assert_that(finished, equal_to([count]), label="FinishBundle")

    runner = _run(local_cluster, build, least=4)
    # The one element expanded into 5000 in one partition, read by three transforms:
    # counted once and split into 4 partitions (the cluster's least, more than 5000/10000).
    assert ("Expand", count, 4) in runner.split_counts


def test_a_folder_is_listed_in_units_one_a_partition_and_no_file_list_is_gathered(
    local_cluster, tmp_path, monkeypatch
):
    """The listing's units are split by the files they name (here 10 files a partition,
    as units of 10 files: one unit a partition); the entries (5 partitions, at least the
    cluster's 4) are neither persisted nor split again, and the batches' Reshuffle is
    passed over: the only collection counted and split is the units'."""
    from beam_jobs import dask_runner
    from beam_jobs.batching import GroupIntoBatches
    from beam_jobs.counts import CountGlobally
    from beam_jobs.matching import MatchImageFiles

    monkeypatch.setattr(dask_runner, "ELEMENTS_PER_PARTITION", 10)

    for index in range(45):
        folder = tmp_path / f"d{index // 20}"
        folder.mkdir(exist_ok=True)
        (folder / f"f{index:02d}.jpg").write_bytes(b"x")
    paths = sorted(str(path) for path in tmp_path.rglob("*.jpg"))

    def build(p):
        entries = (p | MatchImageFiles(str(tmp_path), files_per_unit=10)).entries
        assert_that(entries | CountGlobally(), equal_to([45]), label="Count")
        batches = entries | GroupIntoBatches(batch_size=4)
        flat = batches | beam.FlatMap(lambda batch: [fields[0] for fields in batch])
        assert_that(flat, equal_to(paths), label="EveryFileOnce")

    runner = _run(local_cluster, build, least=4)
    assert ("MatchImageFiles/PlanListing", 5, 5) in runner.split_counts  # 45 files / 10
    assert max(elements for _, elements, _ in runner.split_counts) <= 5  # no per-file list
    assert dask_runner.split_count(5, 1, 4, weight=45) == 5
    assert dask_runner.split_count(5, 1, 8, weight=45) == 5  # never more than the units


def test_files_that_failed_to_decode_go_through_the_model_unscored(tmp_path):
    from logo_batch.inference.bundle import load_bundle

    bundle = load_bundle(make_bundle(tmp_path / "tiny"))
    inputs = np.random.default_rng(0).uniform(0, 255, (3, 24, 24, 3)).astype("float32")
    batch = [inputs[0], FailedInput("corrupt"), inputs[1], inputs[2], FailedInput("empty")]
    results = infer_scores(bundle.model, batch, {}, "m")
    assert [r.example for r in results] == [None, FailedInput("corrupt"), None, None,
                                            FailedInput("empty")]  # fmt: skip
    scored = [r.inference for r in results if r.example is None]
    np.testing.assert_allclose(scored, predict_scores(bundle.model, inputs), atol=1e-6)
    assert [r.inference for r in infer_scores(bundle.model, [FailedInput("x")], {})] == [None]


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    (root / "nested").mkdir()
    for i in range(40):
        (root / ("nested" if i % 3 else "") / f"p{i:02d}.jpg").write_bytes(noise_jpeg(i))
    (root / "bad.jpg").write_bytes(truncated_jpeg())
    (root / "empty.png").write_bytes(b"")
    return root, make_bundle(tmp_path_factory.mktemp("bundle") / "tiny")


def test_the_job_on_a_cluster_started_with_the_dask_command_line(photo_folder, tmp_path):
    """`dask scheduler` and `dask worker --nworkers 2 --nthreads 1 --memory-limit 4GB`,
    separate processes as the README says, then the job with --runner DaskRunner."""
    from benchmarks.dask_cluster import dask_cluster, dask_command

    if not dask_command().is_file():
        pytest.skip(f"no dask command at {dask_command()}")
    root, bundle = photo_folder
    files = sorted(str(p) for p in root.rglob("*.*"))
    output = tmp_path / "dask" / "rows.csv"
    config = job.JobConfig(
        input=str(root), model=str(bundle), output=str(output), batch_size=4,
        rows_per_shard=20, progress_interval=0,
    )  # fmt: skip
    with dask_cluster(tmp_path / "cluster", workers=2, memory_limit="4GB") as cluster:
        assert len(cluster.worker_pids()) == 2
        summary = job.run_job(config, ["--runner", "DaskRunner", "--dask_client_address",
                                       cluster.address])  # fmt: skip
    assert summary.matched == summary.written == len(files) == 42
    shards = [output.parent / f"rows-{i:05d}-of-00003.csv" for i in range(3)]  # ceil(42/20)
    assert summary.outputs == [str(shard) for shard in shards]
    rows = [row for shard in shards for row in read_csv(shard).itertuples()]
    assert sorted(row.path for row in rows) == files  # every file once
    errors = {row.path: row.error for row in rows if row.error}
    assert sorted(errors) == [str(root / "bad.jpg"), str(root / "empty.png")]
    # The same rows as the in-process local runner gives.
    config.output = str(tmp_path / "local" / "rows.csv")
    job.run_job(config, IN_PROCESS)
    local = {
        row.path: (row.label, row.error)
        for i in range(3)
        for row in read_csv(tmp_path / "local" / f"rows-{i:05d}-of-00003.csv").itertuples()
    }
    assert {row.path: (row.label, row.error) for row in rows} == local
