"""The Ray actors of a corpus run: workers that predict units to their CSVs,
and the count of frames done that the progress bar shows.

  progress = Progress.remote()
  worker = Worker.remote(settings, out_dir, os.getcwd())
  ray.get(worker.describe.remote())                 # its model's name
  row = ray.get(worker.run.remote(unit, progress))  # its CSV written; its row

A worker is a process that loads its predictor once (`settings.load`:
predict's, from the predictor cache of its machine) and keeps
it, with one `Stream` (the face detector, the compiled batch) for every
unit it is given. A unit's frames go through predict's own CSV rows
(`stream.csv_rows`) into `stream.write_csv`, atomically, once the unit is
read to its end: a worker killed mid-unit leaves no CSV, at most a
temporary file (`workdir.remove_partials`). Workers are restartable: Ray starts
a killed one again (MAX_RESTARTS) and runs the unit it was on again, up to
TASK_RETRIES more times. Relative inputs and model paths are read from the
driver's current folder (`cwd`), which a worker moves to: on a cluster,
every machine must see the same paths.
"""

from __future__ import annotations

import os
import time

import ray

from data_pipeline import errors
from drml_jax.corpus import plan
from drml_jax.predict.settings import Settings, load
from drml_jax.predict.stream import Stream, csv_rows, write_csv
from drml_jax.runtime import cache, host_memory

MAX_RESTARTS = 20  # a worker's restarts, whatever killed it
TASK_RETRIES = 2  # more tries of a unit whose worker died on it
PROGRESS_EVERY_S = 1.0  # how often a worker tells its frames done


@ray.remote(num_cpus=0)
class Progress:
  """The frames each running unit has done so far, by its output."""

  def __init__(self):
    self.frames: dict[str, int] = {}

  def set(self, output: str, frames: int) -> None:
    self.frames[output] = frames

  def frames_done(self) -> dict[str, int]:
    return self.frames


@ray.remote(
  num_cpus=1, max_restarts=MAX_RESTARTS, max_task_retries=TASK_RETRIES
)
class Worker:
  """A predictor kept loaded, and the units it is given, one at a time."""

  def __init__(self, settings: Settings, out_dir: str, cwd: str):
    # What `cli.command` does for a command's process: compiled programs
    # kept between runs, XLA:CPU's buffers kept between batches.
    cache.enable_compilation_cache()
    host_memory.configure()
    if os.path.isdir(cwd):
      os.chdir(cwd)
    self.out_dir = out_dir
    self.error = None
    try:
      self.predictor = load(settings)
    except (ValueError, OSError) as error:  # told by `describe`
      self.predictor, self.error = None, error
      return
    self.stream = Stream(
      lambda: self.predictor, detect=settings.detect, every=settings.every
    )

  def describe(self) -> str:
    """The model's description; raises the error that kept the predictor
    from loading."""
    if self.error is not None:
      raise self.error
    return self.predictor.description

  def run(self, unit: plan.Unit, progress=None) -> dict:
    """Predicts `unit`'s frames, writes its CSV (everything that could be
    read) and returns its manifest row; tells `progress` (a `Progress`)
    its frames done as it goes."""
    start = last_told = time.perf_counter()
    output = os.path.join(self.out_dir, unit.output)
    aus, intensity = self.predictor.aus, self.predictor.has_intensity
    rows, failures, frames, faces = [], [], 0, 0
    for frame in self.stream(list(unit.paths), failures.append):
      rows += csv_rows(frame, aus, intensity)
      frames += 1
      faces += len(frame.faces)
      if progress and time.perf_counter() - last_told > PROGRESS_EVERY_S:
        progress.set.remote(unit.output, frames)
        last_told = time.perf_counter()
    if frames:
      write_csv(output, rows, aus, intensity)
    elif os.path.exists(output):  # an earlier run's: the file reads no more
      os.remove(output)
    return plan.row(
      unit,
      frames=frames,
      faces=faces,
      seconds=time.perf_counter() - start,
      errors=[errors.first_line(error) for error in failures],
    )
