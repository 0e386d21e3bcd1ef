"""Runs a corpus's units on Ray workers: on this machine, or on a cluster.

  check_address("head:6379")            # before anything is written
  started = connect("head:6379", workers=4)  # or None: a local Ray
  try:
    run(units, settings, out_dir, workers_wanted=4, on_row=record, bar=bar)
  finally:
    disconnect(started)

`connect` reuses the Ray this process already runs (a test's), joins a
running cluster by its address (`auto`: the one `ray start` left on this
machine), or starts a local one with a CPU per worker. An address is first
asked for a TCP connection, for at most CONNECT_TIMEOUT_S: Ray itself
would wait minutes for an address nobody answers.

`run` starts the workers (`workers.Worker`, spread over the machines),
gives each one unit at a time, the units with the most frames first, and
calls `on_row` with each unit's manifest row as it finishes. A worker that
dies is restarted by Ray, and its unit run again on it; a unit whose worker
died on it 1 + TASK_RETRIES times is recorded failed, and so is a unit
whose worker raised. The bar counts frames as workers tell them
(`workers.Progress`). `stopped` is asked between waits: when it says so
(Ctrl-C or SIGTERM, `runtime.signals`), `run` returns False. On leaving,
normally, stopped or by an exception, the workers are killed.
"""

from __future__ import annotations

import collections
import logging
import os
import socket
import time
from typing import Callable

import ray
from tqdm import tqdm

from data_pipeline import errors
from drml_jax.corpus import plan, workers
from drml_jax.predict.settings import Settings

CONNECT_TIMEOUT_S = 5.0
POLL_S = 0.5  # how often the bar is brought up to date
WAIT_S = 0.1  # the longest wait for a unit: how soon a stop is seen
# The default --workers: one a CORES_PER_WORKER cores of each machine, at
# least one. A worker is a predict process, whose decoding and model
# threads keep two cores busy (benchmarks/README.md#a-corpus-on-ray).
CORES_PER_WORKER = 2
# Only manifest rows travel through Ray's object store.
OBJECT_STORE_BYTES = 128 * 2**20


def check_address(address: str) -> None:
  """ValueError / ConnectionError in one line unless `address` is `auto`
  or a HOST:PORT that accepts a TCP connection within CONNECT_TIMEOUT_S."""
  if address == "auto":
    return
  host, _, port = address.rpartition(":")
  if not host or not port.isdigit():
    raise ValueError(
      f"--address {address}: give HOST:PORT (the head's `ray start --head` "
      "port, 6379 by default) or auto"
    )
  try:
    socket.create_connection((host, int(port)), CONNECT_TIMEOUT_S).close()
  except OSError as error:
    raise ConnectionError(
      f"--address {address}: no Ray cluster answers there within "
      f"{CONNECT_TIMEOUT_S:g} s ({errors.first_line(error)}); start one "
      "with `ray start --head` on its head machine, or leave --address out "
      "to run on this one"
    ) from None


def connect(address: str | None, workers_wanted: int | None) -> bool:
  """Ray for the run (see the module); returns whether this call started
  or joined it, for `disconnect`."""
  if ray.is_initialized():
    return False
  quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
  if address is None:
    ray.init(
      num_cpus=max(os.cpu_count() or 1, workers_wanted or 1),
      include_dashboard=False,
      object_store_memory=OBJECT_STORE_BYTES,
      **quiet,
    )
    return True
  try:
    ray.init(address=address, **quiet)
  except ConnectionError as error:
    raise ConnectionError(
      f"--address {address}: {errors.first_line(error)}"
    ) from None
  return True


def disconnect(started: bool) -> None:
  if started:
    ray.shutdown()


def default_workers() -> int:
  """One worker a CORES_PER_WORKER CPUs of each live machine, at least one
  a machine."""
  return sum(
    max(1, int(node["Resources"].get("CPU", 0)) // CORES_PER_WORKER)
    for node in ray.nodes()
    if node["Alive"]
  )


def check_workers(count: int) -> None:
  """ValueError in one line if Ray has fewer CPUs than `count` workers
  (each holds one)."""
  cpus = int(ray.cluster_resources().get("CPU", 0))
  if count > cpus:
    raise ValueError(
      f"--workers {count}: Ray has {cpus} CPUs, one a worker; pass "
      f"--workers {cpus} or fewer, or add machines"
    )


def _ready(actors: list) -> str:
  """Waits for the workers to load their predictor; returns the first's
  description of it, or raises the error that kept them from loading."""
  try:
    return ray.get([actor.describe.remote() for actor in actors])[0]
  except ray.exceptions.RayTaskError as error:
    raise error.cause from None


def _failed(unit: plan.Unit, reason: str) -> dict:
  return plan.row(unit, frames=0, faces=0, seconds=0.0, errors=[reason])


def _outcome(ref, unit: plan.Unit) -> tuple[dict, bool]:
  """A finished task's manifest row, and whether its worker is gone for
  good."""
  try:
    return ray.get(ref), False
  except ray.exceptions.ActorUnavailableError:
    return _failed(
      unit,
      f"{unit.input}: its worker died on it {1 + workers.TASK_RETRIES} "
      "times (killed, or out of memory); it is tried again on the next run",
    ), False
  except ray.exceptions.RayActorError as error:
    return _failed(
      unit, f"{unit.input}: its worker died ({errors.first_line(error)})"
    ), True
  except ray.exceptions.RayTaskError as error:
    return _failed(
      unit, f"{unit.input}: {errors.first_line(error.cause or error)}"
    ), False


def run(
  units: list[plan.Unit],
  settings: Settings,
  out_dir: str,
  *,
  workers_wanted: int,
  on_row: Callable[[dict], None],
  on_ready: Callable[[str], None] = print,
  bar: tqdm | None = None,
  frames: dict[str, int] | None = None,
  stopped: Callable[[], bool] = lambda: False,
) -> bool:
  """Predicts `units` (see the module); False if `stopped` ended it first.
  `on_ready` is given the model's description once the workers have loaded
  it; `frames` (by output) orders the units, most first."""
  frames = frames or {}
  queue = collections.deque(
    sorted(units, key=lambda unit: -frames.get(unit.output, 0))
  )
  progress = workers.Progress.remote()
  actors = [
    workers.Worker.options(scheduling_strategy="SPREAD").remote(
      settings, os.path.abspath(out_dir), os.getcwd()
    )
    for _ in range(min(workers_wanted, len(units)))
  ]
  running = {}

  def give(actor) -> None:
    if queue:
      unit = queue.popleft()
      running[actor.run.remote(unit, progress)] = (actor, unit)

  try:
    on_ready(_ready(actors))
    for actor in actors:
      give(actor)
    done, finished, shown_at = 0, set(), 0.0
    while running:
      if stopped():
        return False
      ready, _ = ray.wait(list(running), num_returns=1, timeout=WAIT_S)
      for ref in ready:
        actor, unit = running.pop(ref)
        row, gone = _outcome(ref, unit)
        finished.add(unit.output)
        done += int(row["frames"])
        on_row(row)
        if not gone:
          give(actor)
      if bar is not None and time.monotonic() - shown_at > POLL_S:
        told = ray.get(progress.frames_done.remote())
        shown = done + sum(
          n for output, n in told.items() if output not in finished
        )
        bar.update(max(0, shown - bar.n))
        shown_at = time.monotonic()
    if bar is not None:
      bar.update(max(0, done - bar.n))
    return True
  finally:
    for actor in [*actors, progress]:
      ray.kill(actor, no_restart=True)
