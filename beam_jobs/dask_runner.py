"""Beam's Dask runner, translated so that a worker's memory does not grow with the data.

Beam 2.77's ``DaskRunner`` turns each ParDo into a dask ``map_partitions`` that collects
all the DoFn's outputs of a partition in a list (and drops what ``finish_bundle``
emits), each GroupByKey into a shuffle whose output has as many partitions as its input,
and reads a side input by computing it again inside every task that uses it. The only
source of partitions is ``Create``, and this job starts from one element (the input to
list). So a whole folder was one partition: one worker listed it, decoded every image of
it into one list (about 8 MB per photo in whole mode), and the other workers idled; 270
photos took ~3 GB and 4 GB workers were killed.

:class:`BoundedDaskRunner` (what ``--runner DaskRunner`` runs) translates:

- **ParDo chains, streamed.** A ParDo whose input no other transform reads is chained to
  the ParDo before it, and a chain runs as one dask task per partition with each DoFn a
  generator over the previous one's outputs: one element at a time goes through the
  chain (one batch of decoded images, not a partition's). A chain's output is a list only
  where it must be kept (read by several transforms, shuffled, flattened, a side input).
  What ``finish_bundle`` emits is kept.
- **Partitions that follow the data.** A collection read by several transforms,
  shuffled, or reshuffled, that has fewer partitions than :func:`min_partitions` (twice
  the cluster's worker threads) is persisted on the cluster, counted, and split into
  ``max(min_partitions, ceil(elements / ELEMENTS_PER_PARTITION))`` partitions (never
  more than its elements), and every later step keeps that many partitions. An element
  with a ``partition_weight`` counts as that many: the job's listing units
  (:class:`~beam_jobs.listing.ListingUnit`, up to 10,000 files each) are split about
  one a partition, so that a folder's files are listed and classified in many tasks
  and no worker holds more than a unit of them. A Reshuffle of a collection that
  already has enough partitions is passed over (its chain goes on in the same tasks).
- **Side inputs, once.** A side input is computed once, as a dask item every task that
  reads it receives.
- **Every leaf.** Every transform nothing reads is computed, not only the last one visited.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from apache_beam import pvalue
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.pipeline import AppliedPTransform, PipelineVisitor
from apache_beam.runners.common import (
    DoFnContext,
    DoFnInvoker,
    DoFnSignature,
    Receiver,
    _OutputHandler,
)
from apache_beam.runners.dask.dask_runner import DaskOptions, DaskRunner, DaskRunnerResult
from apache_beam.runners.dask.overrides import (
    _Create,
    _Flatten,
    _GroupByKeyOnly,
    _Reshuffle,
    dask_overrides,
)
from apache_beam.runners.dask.transform_evaluator import (
    Create,
    defenestrate,
    get_windowed_value,
)
from apache_beam.transforms.core import DoFn, ParDo
from apache_beam.transforms.sideinputs import SideInputMap

ELEMENTS_PER_PARTITION = 10_000
"""Elements a partition holds when a collection is split (see the module's notes)."""


def min_partitions(client) -> int:
    """Twice the cluster's worker threads (at least 2): enough partitions to keep every
    worker busy."""
    try:
        threads = sum(client.nthreads().values())
    except Exception:  # noqa: BLE001  (no workers yet, or a client without the call)
        threads = 1
    return max(2, 2 * threads)


def split_count(elements: int, partitions: int, least: int, weight: int | None = None) -> int:
    """Partitions for a collection of ``elements`` that has ``partitions`` now: at least
    ``least`` and one per :data:`ELEMENTS_PER_PARTITION` of its ``weight`` (the sum of
    :func:`element_weight`; default: its elements), never more than its elements."""
    weight = elements if weight is None else weight
    wanted = max(least, math.ceil(weight / ELEMENTS_PER_PARTITION))
    return max(partitions, min(elements, wanted))


def element_weight(element) -> int:
    """What ``element`` counts as when its collection is split: its ``partition_weight``
    (the job's listing units: the files they name), else 1."""
    return getattr(element, "partition_weight", 1)


@dataclasses.dataclass
class _Stage:
    """One ParDo of a chain: its DoFn and everything its invoker needs."""

    fn: DoFn
    label: str
    window_fn: Any
    args: Sequence[Any]
    kwargs: dict[str, Any]
    side_views: Sequence[tuple[Any, dict]]  # (view class, view options) per side input
    side_slots: Sequence[int]  # where its side inputs are among the chain's side values


class _WindowedValues:
    """A side input's computed values as the windowed values ``SideInputMap`` reads."""

    def __init__(self, values: Iterable[Any], window_fn):
        self._values = values
        self._window_fn = window_fn

    def __iter__(self):
        for value in self._values:
            yield get_windowed_value(value, self._window_fn)


class _Push(Receiver):
    """Hands each output on to the next DoFn of the chain as it is emitted (Beam's
    fused execution): nothing is buffered between the steps of a chain."""

    def __init__(self, invoker: DoFnInvoker):
        self._invoker = invoker

    def receive(self, windowed_value) -> None:
        self._invoker.invoke_process(windowed_value)


class _Collect(Receiver):
    """The end of a chain: keeps the outputs' values (``out``), or drops them (None)."""

    def __init__(self, out: list | None):
        self._out = out

    def receive(self, windowed_value) -> None:
        if self._out is not None:
            self._out.append(windowed_value.value)


class _AnyTag(dict):
    """Every output tag to the same receiver (Beam's Dask runner merges tagged outputs)."""

    def __init__(self, receiver: Receiver):
        super().__init__()
        self._receiver = receiver

    def __missing__(self, tag) -> Receiver:
        return self._receiver


def _invoker(stage: _Stage, receiver: Receiver, side_values: Sequence[list]) -> DoFnInvoker:
    handler = _OutputHandler(
        window_fn=stage.window_fn,
        main_receivers=receiver,
        tagged_receivers=_AnyTag(receiver),
        per_element_output_counter=None,
        output_batch_converter=None,
        process_yields_batches=False,
        process_batch_yields_elements=False,
    )
    side_inputs = [
        SideInputMap(view, options, _WindowedValues(side_values[slot], options.get("window_fn")))
        for (view, options), slot in zip(stage.side_views, stage.side_slots, strict=True)
    ]
    return DoFnInvoker.create_invoker(
        DoFnSignature(stage.fn),
        handler,
        context=DoFnContext(stage.label, state=None),
        side_inputs=side_inputs,
        input_args=list(stage.args),
        input_kwargs=stage.kwargs,
        user_state_context=None,
        bundle_finalizer_param=DoFn.BundleFinalizerParam(),
    )


def run_chain(
    partition: Iterable[Any], keep: bool, stages: Sequence[_Stage], *side_values: list
) -> list:
    """A dask partition through a chain of DoFns as one bundle: each element is pushed
    through every DoFn before the next is read; returns the outputs (``keep``), or none
    (a leaf, run for its effects)."""
    out: list = []
    receiver: Receiver = _Collect(out if keep else None)
    invokers: list[DoFnInvoker] = []
    for stage in reversed(stages):
        invokers.insert(0, _invoker(stage, receiver, side_values))
        receiver = _Push(invokers[0])
    for invoker in invokers:
        invoker.invoke_setup()
    for invoker in invokers:
        invoker.invoke_start_bundle()
    for item in partition:
        invokers[0].invoke_process(get_windowed_value(item, stages[0].window_fn))
    for invoker in invokers:  # in order: what one emits at its finish reaches the next
        invoker.invoke_finish_bundle()
    for invoker in invokers:
        invoker.invoke_teardown()
    return out


def _nothing(partition: Iterable[Any]) -> list:
    for _ in partition:
        pass
    return []


def _concat(parts: Iterable[list]) -> list:
    return [value for part in parts for value in part]


def _group_key(item):
    return item[0]


def _group_value(item):
    key, values = item
    return key, [defenestrate(element[1]) for element in values]


@dataclasses.dataclass
class _Chain:
    """ParDos not yet turned into dask tasks: their input bag and stages, side items."""

    bag: Any
    stages: list[_Stage] = dataclasses.field(default_factory=list)
    side_items: list[Any] = dataclasses.field(default_factory=list)


class _Translator(PipelineVisitor):
    """Builds the dask graph of a pipeline (see the module's notes)."""

    def __init__(self, client, bag_kwargs: dict, consumers: dict, least: int):
        self.client = client
        self.bag_kwargs = bag_kwargs
        self.consumers = consumers
        self.least = least
        self.outputs: dict[AppliedPTransform, Any] = collections.OrderedDict()
        self.split_counts: list[tuple[str, int, int]] = []  # (transform, elements, partitions)

    # -- bags and chains ------------------------------------------------------------
    def bag(self, producer: AppliedPTransform, keep: bool = True):
        """The dask bag of ``producer``'s output (a pending chain becomes its tasks;
        ``keep`` False: a leaf, whose outputs are dropped)."""
        value = self.outputs[producer]
        if isinstance(value, _Chain):
            value = value.bag.map_partitions(
                run_chain, keep, value.stages, *value.side_items, token=producer.full_label
            )
            self.outputs[producer] = value
        elif not keep:
            value = value.map_partitions(_nothing)
        return value

    def spread(self, bag, label: str):
        """``bag`` split to follow its size when it has too few partitions."""
        if bag.npartitions >= self.least:
            return bag
        bag = self.client.persist(bag)
        counted = self.client.compute([bag.count(), bag.map(element_weight).sum()])
        elements, weight = (int(future.result()) for future in counted)
        partitions = split_count(elements, bag.npartitions, self.least, weight)
        self.split_counts.append((label, elements, partitions))
        return bag.repartition(npartitions=partitions) if partitions > bag.npartitions else bag

    def input_bag(self, node: AppliedPTransform, index: int = 0, spread: bool = False):
        producer = list(node.inputs)[index].producer
        bag = self.bag(producer)
        if spread or self.consumers[producer] > 1:
            bag = self.spread(bag, producer.full_label)
            self.outputs[producer] = bag
        return bag

    def side_item(self, side_input):
        bag = self.bag(side_input.pvalue.producer)
        return bag.reduction(list, _concat)

    # -- the visitor ----------------------------------------------------------------
    def visit_transform(self, node: AppliedPTransform) -> None:
        transform = node.transform
        if isinstance(transform, _Create):
            self.outputs[node] = Create(node, bag_kwargs=self.bag_kwargs).apply(None)
        elif type(transform) is ParDo:  # as Beam's: a subclass (GroupAlsoByWindow) is a no-op
            self.outputs[node] = self.chain_pardo(node)
        elif isinstance(transform, _GroupByKeyOnly):
            bag = self.input_bag(node, spread=True)
            self.outputs[node] = bag.groupby(_group_key).map(_group_value)
        elif isinstance(transform, _Reshuffle):
            self.outputs[node] = self.reshuffle(node)
        elif isinstance(transform, _Flatten):
            import dask.bag as db

            bags = [self.input_bag(node, i) for i in range(len(node.inputs))]
            self.outputs[node] = db.concat(bags)
        elif node.inputs:  # a no-op here (Reshuffle, GroupAlsoByWindow): the input as it is
            self.outputs[node] = self.outputs[list(node.inputs)[0].producer]
        else:
            raise NotImplementedError(f"the Dask runner cannot run {node.full_label}")

    def reshuffle(self, node: AppliedPTransform):
        """A Reshuffle: passed over when its input has partitions enough (a pending chain
        goes on through it), else its input spread (see the module's notes)."""
        producer = list(node.inputs)[0].producer
        upstream = self.outputs[producer]
        partitions = (upstream.bag if isinstance(upstream, _Chain) else upstream).npartitions
        if partitions >= self.least and self.consumers[producer] == 1:
            return upstream
        return self.input_bag(node, spread=True)

    def chain_pardo(self, node: AppliedPTransform) -> _Chain:
        transform = node.transform
        args, kwargs = transform.raw_side_inputs
        main_input = next(iter(node.main_inputs.values()))
        producer = main_input.producer
        upstream = self.outputs[producer]
        if isinstance(upstream, _Chain) and self.consumers[producer] == 1:
            chain = _Chain(upstream.bag, list(upstream.stages), list(upstream.side_items))
        else:
            chain = _Chain(self.input_bag(node))
        slots = []
        for side_input in node.side_inputs:
            slots.append(len(chain.side_items))
            chain.side_items.append(self.side_item(side_input))
        views = [(type(si), si._view_options()) for si in node.side_inputs]
        window_fn = main_input.windowing.windowfn if hasattr(main_input, "windowing") else None
        chain.stages.append(
            _Stage(transform.fn, transform.label, window_fn, list(args), kwargs, views, slots)
        )
        return chain

    def leaves(self) -> list:
        """The bags of the transforms nothing reads (run for their effects: what they
        output is not sent to the driver)."""
        return [self.bag(node, False) for node in list(self.outputs) if not self.consumers[node]]


class _Consumers(PipelineVisitor):
    """How many transforms read each transform's output (main and side inputs)."""

    def __init__(self):
        self.counts: collections.Counter = collections.Counter()

    def visit_transform(self, node: AppliedPTransform) -> None:
        self.counts[node] += 0
        for value in node.inputs:
            if isinstance(value, pvalue.PCollection):
                self.counts[value.producer] += 1
        for side_input in node.side_inputs:
            self.counts[side_input.pvalue.producer] += 1


class BoundedDaskRunner(DaskRunner):
    """``DaskRunner`` with the translation of :mod:`beam_jobs.dask_runner`."""

    def __init__(self, least_partitions: Callable[[Any], int] = min_partitions):
        super().__init__()
        self._least_partitions = least_partitions
        self.split_counts: list[tuple[str, int, int]] = []

    def run_pipeline(self, pipeline, options: PipelineOptions):
        import dask
        import dask.distributed as ddist

        dask_options = options.view_as(DaskOptions).get_all_options(
            drop_default=True, current_only=True
        )
        bag_kwargs = DaskOptions._extract_bag_kwargs(dask_options)
        if not bag_kwargs:  # a Create's elements each their own partition (the inputs)
            bag_kwargs["partition_size"] = 1
        client = ddist.Client(**dask_options)
        pipeline.replace_all(dask_overrides())
        consumers = _Consumers()
        pipeline.visit(consumers)
        translator = _Translator(
            client, bag_kwargs, consumers.counts, self._least_partitions(client)
        )
        pipeline.visit(translator)
        self.split_counts = translator.split_counts
        futures = client.compute(list(dask.optimize(*translator.leaves())))
        return DaskRunnerResult(client, futures)
