"""Where `python -m drml_jax.predict`'s time and memory go, stage by stage.

  python -m drml_jax.benchmark.predict --workdir workdirs/quick
  python -m drml_jax.benchmark.predict            # a random full-size DRML
  python -m drml_jax.benchmark.predict --frames 20 --photo-runs 1   # seconds

Start-up rows each run a fresh process, timed from its start to its exit,
with its peak RSS:
  import          `import drml_jax.predict.__main__`
  photo, cold     one photo predicted with an empty compilation cache
  photo, warm     the same command again: the compiled program is read back
The clip is `sample_media.write_clip("one")`: a 640x360 mp4 of one face
moving, zooming and rolling. Its stages run in this process, after a
warm-up, each alone, on the same frames:
  decode          frames decoded (OpenCV / FFmpeg)
  detect + track  faces found and tracked, levelled and cropped
  model           the crops through the jitted model at --batch-size
  stream          all of it as predict runs it: decoding and detection in a
                  background thread, overlapped with the model
and in a fresh process, warm cache: the clip end to end, process start to
CSV written. Peak RSS of the in-process rows is this process's peak so far.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

from data_pipeline.sources.base import DISFA_PLUS_AUS
from drml_jax import cli
from drml_jax.model.factory import build_model
from drml_jax.predict import alignment, media, sample_media, tracking
from drml_jax.predict.faces import Detector
from drml_jax.predict.predictor import DEFAULT_BATCH_SIZE
from drml_jax.predict.saved_predictor import load_predictor
from drml_jax.predict.stream import Stream
from drml_jax.store import checkpoint
from drml_jax.store.workdir import CHECKPOINT_DIR

FULL_MODEL = {"num_aus": len(DISFA_PLUS_AUS), "input_size": 170}
CLIP_FPS = 25.0


@dataclasses.dataclass
class Row:
  stage: str
  seconds: float
  frames: int | None = None  # frames (or faces, for the model) processed
  peak_mb: float | None = None

  @property
  def per_s(self) -> float | None:
    return self.frames / self.seconds if self.frames else None


def _peak_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _process(argv: list[str], environment: dict) -> tuple[float, float]:
  """Wall seconds and peak RSS (MB) of a command run to its end."""
  start = time.perf_counter()
  child = subprocess.Popen(
    argv, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
  )
  _, status, usage = os.wait4(child.pid, 0)
  seconds = time.perf_counter() - start
  error = child.stderr.read().decode()
  child.stderr.close()
  if status:
    raise RuntimeError(f"{' '.join(argv)} failed: {error.strip()[-500:]}")
  return seconds, usage.ru_maxrss / 1024


def _environment(folder: str) -> dict:
  """The child processes' environment: their own compilation cache."""
  environment = {
    **os.environ,
    "DRML_CACHE": os.path.join(folder, "cache"),
  }
  environment.pop("JAX_COMPILATION_CACHE_DIR", None)
  return environment


def _random_workdir(folder: str) -> str:
  """A work directory holding a randomly initialised full-size DRML."""
  path = os.path.join(folder, "random")
  checkpoint.save_model(
    os.path.join(path, CHECKPOINT_DIR),
    build_model(FULL_MODEL),
    FULL_MODEL,
    checkpoint.Inputs(aus=DISFA_PLUS_AUS),
  )
  return path


def startup_rows(workdir: str, folder: str, photo_runs: int) -> list[Row]:
  """Import, then one photo cold and warm, each a fresh process."""
  photo = os.path.join(folder, "astronaut.jpg")
  image, _ = sample_media.face_photos()["astronaut"]
  Image.fromarray(image).save(photo, quality=95)
  environment = _environment(folder)
  seconds, peak = _process(
    [sys.executable, "-c", "import drml_jax.predict.__main__"], environment
  )
  rows = [Row("import drml_jax.predict", seconds, None, peak)]
  predict = [
    sys.executable,
    "-m",
    "drml_jax.predict",
    photo,
    "--workdir",
    workdir,
    "--out",
    os.path.join(folder, "photo.csv"),
    "--overwrite",
    "--no-progress",
  ]
  for run in range(1 + photo_runs):
    stage = "one photo, cold cache" if run == 0 else "one photo, warm cache"
    seconds, peak = _process(predict, environment)
    rows.append(Row(stage, seconds, 1, peak))
  return rows


def clip_rows(
  workdir: str, folder: str, frames: int, batch_size: int
) -> list[Row]:
  """The clip's stages in this process, then end to end in a fresh one."""
  clip = os.path.join(folder, "clip.mp4")
  sample_media.write_clip(clip, "one", frames=frames, fps=CLIP_FPS)
  predictor = load_predictor(workdir=workdir, batch_size=batch_size)
  start = time.perf_counter()
  images = [frame.image for frame in media.frames(clip)]
  rows = [Row("decode", time.perf_counter() - start, len(images), _peak_mb())]

  detector, aligner = Detector(), alignment.Aligner()
  tracker = tracking.Tracker(detector)
  crops = []
  start = time.perf_counter()
  for index, image in enumerate(images):
    for _, face in tracker(image, index / CLIP_FPS):
      crops.append(alignment.crop(image, aligner(image, face)))
  rows.append(
    Row(
      "detect + track + crop",
      time.perf_counter() - start,
      len(images),
      _peak_mb(),
    )
  )
  faces = np.stack(crops)
  predictor(faces[:batch_size])  # compiles (or reads the cache)
  start = time.perf_counter()
  predictor(faces)
  rows.append(
    Row(
      f"model, batch {batch_size} (faces)",
      time.perf_counter() - start,
      len(faces),
      _peak_mb(),
    )
  )
  del images
  stream = Stream(lambda: predictor)
  start = time.perf_counter()
  for _ in stream([clip], on_error=_raise):
    pass
  rows.append(
    Row(
      "stream: all stages overlapped",
      time.perf_counter() - start,
      stream.timings.frames,
      _peak_mb(),
    )
  )
  seconds, peak = _process(
    [
      sys.executable,
      "-m",
      "drml_jax.predict",
      clip,
      "--workdir",
      workdir,
      "--out",
      os.path.join(folder, "clip.csv"),
      "--batch-size",
      str(batch_size),
      "--no-progress",
    ],
    _environment(folder),
  )
  rows.append(Row("clip end to end, warm cache", seconds, frames, peak))
  return rows


def _raise(error: Exception) -> None:
  raise error


def table(rows: list[Row]) -> str:
  """The rows as a markdown table."""
  lines = [
    "| stage | seconds | frames/s | peak RSS (MB) |",
    "| --- | --- | --- | --- |",
  ]
  for row in rows:
    rate = "" if row.per_s is None else f"{row.per_s:.1f}"
    peak = "" if row.peak_mb is None else f"{row.peak_mb:.0f}"
    lines.append(f"| {row.stage} | {row.seconds:.2f} | {rate} | {peak} |")
  return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
  parser = cli.Parser(
    prog="python -m drml_jax.benchmark.predict",
    description=__doc__.splitlines()[0],
    formatter_class=argparse.RawDescriptionHelpFormatter,
    epilog=__doc__,
  )
  parser.add_argument(
    "--workdir", help="a training work directory (default: a random DRML)"
  )
  parser.add_argument(
    "--frames",
    type=cli.positive_int,
    default=400,
    help="the clip's frames (%(default)s, 16 s at 25 frames/s)",
  )
  parser.add_argument(
    "--batch-size", type=cli.positive_int, default=DEFAULT_BATCH_SIZE
  )
  parser.add_argument(
    "--photo-runs",
    type=cli.positive_int,
    default=3,
    help="warm one-photo runs (%(default)s)",
  )
  return parser.parse_args(argv)


@cli.command(keep_memory=False, cache_compiles=False)
def main(argv: list[str]) -> int:
  args = parse_args(argv)
  with tempfile.TemporaryDirectory() as folder:
    workdir = args.workdir or _random_workdir(folder)
    rows = startup_rows(workdir, folder, args.photo_runs)
    rows += clip_rows(workdir, folder, args.frames, args.batch_size)
  print(table(rows))
  return 0


if __name__ == "__main__":
  sys.exit(main())
