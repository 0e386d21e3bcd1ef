"""What `python -m drml_jax.corpus` gains over predict in one process, by workers.

  python -m drml_jax.benchmark.corpus --clips 20 --frames 400 --workers 1 2 3
  python -m drml_jax.benchmark.corpus --workdir workdirs/quick
  python -m drml_jax.benchmark.corpus --clips 2 --frames 20 --workers 1  # a check

The corpus is --clips copies of `sample_media.write_clip("one")`, 640x360
at 25 frames/s, --frames each: one face in every frame. It is kept in the
temporary folder between runs (drml_corpus_benchmark/). The model is
--workdir's, else a randomly initialised full-size DRML; the predictor and
compiled programs are in a cache of this run's own, warmed before anything
is timed (the command's first run on a machine pays them once more).

  predict, 1 process  the corpus through predict's `Stream` in this process,
                      the predictor loaded: frames/s, this process's peak RSS
  corpus, N workers   `python -m drml_jax.corpus` on the corpus (its own
                      local Ray, started and shut down): wall seconds from
                      the command's start to its end, frames/s over them,
                      speed-up over predict's wall seconds, each worker's
                      frames/s while it works (frames over the seconds its
                      units took, from the manifest), the workers' peak RSS
                      (sampled from /proc, the largest)
Then the one-video overhead (the corpus of one clip on one worker minus
predict on it in this process: Ray's start, the worker's start and model
load, scheduling) and, from the best machine's rate measured (workers x
their frames/s while working), the machines needed for 10,000 hours of
30 frames/s video in 24 hours, with the assumptions it rests on.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import math
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
import warnings

import psutil

from drml_jax import cli
from drml_jax.benchmark import sample_media
from drml_jax.benchmark.predict import model_flags, random_checkpoint
from drml_jax.benchmark.timing import load_average
from drml_jax.corpus import __main__ as corpus
from drml_jax.corpus import plan
from drml_jax.predict.predictor import DEFAULT_BATCH_SIZE
from drml_jax.predict.saved_predictor import load_predictor, wait_saved
from drml_jax.predict.stream import Stream
from drml_jax.rendering.tables import markdown_table

SIZE = (640, 360)
FPS = 25.0
TARGET_HOURS = 10_000  # of video
TARGET_FPS = 30  # the video's frame rate
TARGET_DAYS = 1  # to predict them in
SAMPLE_S = 0.25  # how often the workers' memory is read


def corpus_folder(clips: int, frames: int) -> str:
  """The corpus, made once in the temporary folder: copies of one clip."""
  folder = os.path.join(
    tempfile.gettempdir(), "drml_corpus_benchmark", f"{clips}x{frames}"
  )
  paths = [os.path.join(folder, f"clip_{i:04d}.mp4") for i in range(clips)]
  if all(os.path.isfile(path) for path in paths):
    return folder
  os.makedirs(folder, exist_ok=True)
  first = os.path.join(folder, "first.partial.mp4")
  sample_media.write_clip(first, "one", frames=frames, size=SIZE, fps=FPS)
  for path in paths:
    shutil.copy(first, path + ".partial.mp4")
    os.replace(path + ".partial.mp4", path)
  os.remove(first)
  return folder


class WorkerMemory:
  """The largest RSS of any corpus worker process (titled ray::Worker),
  sampled in a thread while the block runs."""

  def __init__(self):
    self.peak_mb = 0.0
    self.stop = threading.Event()

  def _sample(self) -> None:
    while not self.stop.wait(SAMPLE_S):
      for process in psutil.process_iter(["cmdline", "memory_info"]):
        cmdline = process.info["cmdline"] or [""]
        memory = process.info["memory_info"]
        if cmdline[0].startswith("ray::Worker") and memory:
          self.peak_mb = max(self.peak_mb, memory.rss / 2**20)

  def __enter__(self) -> WorkerMemory:
    self.thread = threading.Thread(target=self._sample, daemon=True)
    self.thread.start()
    return self

  def __exit__(self, *_) -> None:
    self.stop.set()
    self.thread.join()


def predict_seconds(predictor, paths: list[str]) -> tuple[float, int]:
  """Seconds and frames of predict's stream over `paths`, in this process."""
  stream = Stream(lambda: predictor)
  start = time.perf_counter()
  for _ in stream(paths, on_error=_raise):
    pass
  return time.perf_counter() - start, stream.timings.frames


def _raise(error: Exception) -> None:
  raise error


def corpus_run(
  inputs: list[str], model: list[str], workers: int, out_dir: str
) -> tuple[float, float, list[dict]]:
  """Wall seconds, the workers' peak RSS (MB) and the manifest's rows of
  the command on `inputs`, its output thrown away."""
  argv = [*inputs, *model, "--out-dir", out_dir, "--workers", str(workers)]
  with WorkerMemory() as memory, contextlib.redirect_stdout(io.StringIO()):
    start = time.perf_counter()
    status = corpus.main([*argv, "--no-progress"])
    seconds = time.perf_counter() - start
  if status != 0:
    raise RuntimeError(f"python -m drml_jax.corpus {' '.join(argv)}: {status}")
  with open(os.path.join(out_dir, plan.MANIFEST), newline="") as f:
    rows = list(csv.DictReader(f))
  shutil.rmtree(out_dir)
  return seconds, memory.peak_mb, rows


def machines_needed(rate: float) -> int:
  """Machines, each predicting `rate` frames/s, for TARGET_HOURS of
  TARGET_FPS video in TARGET_DAYS."""
  frames = TARGET_HOURS * 3600 * TARGET_FPS
  return math.ceil(frames / (TARGET_DAYS * 86400) / rate)


def parse_args(argv: list[str]) -> argparse.Namespace:
  parser = cli.parser("python -m drml_jax.benchmark.corpus", __doc__)
  parser.add_argument(
    "--workdir", help="a training work directory (default: a random DRML)"
  )
  parser.add_argument("--clips", type=cli.positive_int, default=20)
  parser.add_argument(
    "--frames", type=cli.positive_int, default=400, help="each clip's"
  )
  parser.add_argument(
    "--workers",
    type=cli.positive_int,
    nargs="+",
    default=[1, 2, 3],
    help="the worker counts to time (default: %(default)s)",
  )
  parser.add_argument(
    "--batch-size", type=cli.positive_int, default=DEFAULT_BATCH_SIZE
  )
  return parser.parse_args(argv)


@cli.command(measures=True)
def main(argv: list[str]) -> int:
  args = parse_args(argv)
  # Ray starts its processes by fork and exec at once, which JAX's threads
  # in this process do not mind.
  warnings.filterwarnings(
    "ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning
  )
  load = load_average()  # other work on the machine skews the timings
  folder = corpus_folder(args.clips, args.frames)
  paths = sorted(
    os.path.join(folder, name)
    for name in os.listdir(folder)
    if name.startswith("clip_")
  )
  with tempfile.TemporaryDirectory() as scratch:
    # The run's own cache: the workers (Ray's processes, started by this
    # one) inherit it, and the user's is left alone.
    os.environ["DRML_CACHE"] = os.path.join(scratch, "cache")
    source = (
      {"workdir": args.workdir}
      if args.workdir
      else {"checkpoint": random_checkpoint(scratch)}
    )
    model = model_flags(source) + ["--batch-size", str(args.batch_size)]
    predictor = load_predictor(**source, batch_size=args.batch_size)
    wait_saved()  # in the cache, for the workers
    predictor.prepare(args.batch_size)
    predict_seconds(predictor, paths[:1])  # a clip's last batch compiled
    one_seconds, _ = predict_seconds(predictor, paths[:1])
    seconds, frames = predict_seconds(predictor, paths)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = [["predict, 1 process", seconds, frames / seconds, 1.0, None, peak]]
    out_dir = os.path.join(scratch, "out")
    corpus_run(paths[:1], model, 1, out_dir)  # the workers' programs compiled
    overhead = corpus_run(paths[:1], model, 1, out_dir)[0] - one_seconds
    best = 0.0
    for workers in args.workers:
      wall, peak_mb, manifest = corpus_run(paths, model, workers, out_dir)
      busy = sum(float(row["seconds"]) for row in manifest)
      rate = sum(int(row["frames"]) for row in manifest) / busy
      best = max(best, rate * min(workers, len(paths)))
      rows.append(
        [f"corpus, {workers} worker{'s' if workers > 1 else ''}"]
        + [wall, frames / wall]
        + [seconds / wall, rate, peak_mb]
      )
  print(
    f"{args.clips} clips x {args.frames} frames ({SIZE[0]}x{SIZE[1]}, one "
    f"face each), {os.cpu_count()} cores; load average at the start: {load}"
  )
  print(
    markdown_table(
      [
        "run",
        "wall s",
        "frames/s",
        "speed-up",
        "a worker's frames/s, working",
        "peak RSS (MB), a worker",
      ],
      [
        [
          name,
          f"{wall:.1f}",
          f"{rate:.1f}",
          f"{speedup:.2f}",
          "-" if working is None else f"{working:.1f}",
          f"{peak:.0f}",
        ]
        for name, wall, rate, speedup, working, peak in rows
      ],
    )
  )
  print(
    f"\none-video overhead: {overhead:.1f} s (the corpus of one clip on one "
    "worker, minus predict on it in one process: Ray's start, the worker's "
    "start and model load, scheduling)"
  )
  print(
    f"{TARGET_HOURS:,} hours of {TARGET_FPS} frames/s video in "
    f"{24 * TARGET_DAYS} hours: {machines_needed(best):,} machines like "
    f"this one, at its best rate measured ({best:.1f} frames/s: workers x "
    "each one's rate while working); assuming every frame predicted "
    "(--every 1), one face a frame at 640x360, start-up and scheduling "
    "negligible over a long run, and no bottleneck in the shared storage"
  )
  return 0


if __name__ == "__main__":
  sys.exit(main())
