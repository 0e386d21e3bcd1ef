"""Where `python -m drml_jax.predict`'s time and memory go, stage by stage.

  python -m drml_jax.benchmark.predict --workdir workdirs/quick
  python -m drml_jax.benchmark.predict            # a random full-size DRML
  python -m drml_jax.benchmark.predict --frames 20 --photo-runs 1   # seconds

Start-up rows each run a fresh process, timed from its start to its exit,
with its peak RSS:
  import          `import drml_jax.predict.__main__`
  photo, cold     one photo predicted with an empty cache (DRML_CACHE): the
                  checkpoint read, the model exported and compiled
  photo, warm     the same command again: the exported model and its
                  compiled program read back
The clip is `sample_media.write_clip("one")`: a 640x360 mp4 of one face
moving, zooming and rolling. Its stages run in this process, after a
warm-up, each alone, on the same frames:
  decode          frames decoded (OpenCV / FFmpeg)
  detect + track  faces found and tracked, aligned and cropped
  model           the crops through the jitted model at --batch-size
  stream          all of it as predict runs it: decoding and detection in a
                  background thread, overlapped with the model
and in a fresh process, twice: the clip end to end, process start to CSV
written, first compiling the batch's program, then with it cached. Peak RSS
of the in-process rows is this process's peak so far.

Then four tables: the face detector's precision and recall on
`sample_media.labelled_set()`, by kind of image; how far its crops of
synthetic faces placed at known rolls are from their training crops
(`sample_media.alignment_error`); how far the AU
probabilities of a face rolled by +-10 and +-20 degrees are from the upright
face's, aligned by the landmarks and not; and the evidence maps' cost per face
and where they lie on synthetic faces, beside a random model's (the last
two meaningful with a trained --workdir).
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
from drml_jax.benchmark import saliency_check, sample_media
from drml_jax.model.factory import build_model
from drml_jax.predict import alignment, media, saliency, tracking
from drml_jax.predict.detection import Detector
from drml_jax.predict.predictor import DEFAULT_BATCH_SIZE
from drml_jax.predict.saved_predictor import load_predictor
from drml_jax.predict.stream import Stream
from drml_jax.store import checkpoint

FULL_MODEL = {"num_aus": len(DISFA_PLUS_AUS), "input_size": 170}
CLIP_FPS = 25.0
SALIENCY_FACES_PER_AU = 3
GNU_TIME = "/usr/bin/time" if os.path.exists("/usr/bin/time") else None


@dataclasses.dataclass
class Stage:
  stage: str
  seconds: float
  frames: int | None = None  # frames (or faces, for the model) processed
  peak_mb: float | None = None

  @property
  def per_s(self) -> float | None:
    return self.frames / self.seconds if self.frames else None


def _peak_mb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _process(argv: list[str], environment: dict) -> tuple[float, float | None]:
  """Wall seconds and peak RSS (MB) of a command run to its end.

  The peak comes from GNU time (`time -f %M`), where installed: a child's
  own rusage would start from this process's memory, copied at the fork.
  """
  report = tempfile.NamedTemporaryFile(suffix=".rss", delete=False)
  report.close()
  prefix = [GNU_TIME, "-f", "%M", "-o", report.name] if GNU_TIME else []
  start = time.perf_counter()
  done = subprocess.run(
    prefix + argv,
    env=environment,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.PIPE,
    text=True,
    check=False,
  )
  seconds = time.perf_counter() - start
  with open(report.name) as f:
    kilobytes = f.read().strip().splitlines()
  os.unlink(report.name)
  if done.returncode:
    last = (done.stderr.strip().splitlines() or ["no message"])[-1]
    raise ValueError(f"{' '.join(argv[:3])} failed: {last}")
  return seconds, int(kilobytes[-1]) / 1024 if kilobytes else None


def model_flags(model: dict) -> list[str]:
  """{"workdir": W} or {"checkpoint": C} as predict's flags."""
  return [f"--{name}" for name in model] + list(model.values())


def _environment(folder: str) -> dict:
  """The child processes' environment: their own compilation cache."""
  environment = {
    **os.environ,
    "DRML_CACHE": os.path.join(folder, "cache"),
  }
  environment.pop("JAX_COMPILATION_CACHE_DIR", None)
  return environment


def random_checkpoint(folder: str) -> str:
  """A checkpoint directory holding a randomly initialised full-size DRML."""
  path = os.path.join(folder, "random")
  checkpoint.save_model(
    path,
    build_model(FULL_MODEL),
    FULL_MODEL,
    checkpoint.Inputs(aus=DISFA_PLUS_AUS),
  )
  return path


def startup_rows(model: dict, folder: str, photo_runs: int) -> list[Stage]:
  """Import, then one photo cold and warm, each a fresh process."""
  photo = os.path.join(folder, "astronaut.jpg")
  image, _ = sample_media.face_photos()["astronaut"]
  Image.fromarray(image).save(photo, quality=95)
  environment = _environment(folder)
  seconds, peak = _process(
    [sys.executable, "-c", "import drml_jax.predict.__main__"], environment
  )
  rows = [Stage("import drml_jax.predict", seconds, None, peak)]
  predict = [
    sys.executable,
    "-m",
    "drml_jax.predict",
    photo,
    *model_flags(model),
    "--out",
    os.path.join(folder, "photo.csv"),
    "--overwrite",
    "--no-progress",
  ]
  for run in range(1 + photo_runs):
    stage = "one photo, cold cache" if run == 0 else "one photo, warm cache"
    seconds, peak = _process(predict, environment)
    rows.append(Stage(stage, seconds, 1, peak))
  return rows


def clip_rows(
  model: dict, folder: str, frames: int, batch_size: int
) -> list[Stage]:
  """The clip's stages in this process, then end to end in a fresh one."""
  clip = os.path.join(folder, "clip.mp4")
  sample_media.write_clip(clip, "one", frames=frames, fps=CLIP_FPS)
  predictor = load_predictor(**model, batch_size=batch_size)
  start = time.perf_counter()
  decoded = list(media.frames(clip))
  rows = [
    Stage("decode", time.perf_counter() - start, len(decoded), _peak_mb())
  ]

  stream = Stream(lambda: predictor)
  tracker = tracking.Tracker(stream.detector)
  start = time.perf_counter()
  found = [item for frame in decoded for item in stream.faces(frame, tracker)]
  rows.append(
    Stage(
      "detect + track + crop",
      time.perf_counter() - start,
      len(decoded),
      _peak_mb(),
    )
  )
  del decoded
  faces = np.stack([item.crop for item in found])
  faces = faces[: max(1, len(faces) // batch_size) * batch_size]  # one program
  predictor(faces[:batch_size])  # compiles (or reads the cache)
  start = time.perf_counter()
  predictor(faces)
  rows.append(
    Stage(
      f"model, batch {batch_size} (faces)",
      time.perf_counter() - start,
      len(faces),
      _peak_mb(),
    )
  )
  start = time.perf_counter()
  for _ in stream([clip], on_error=_raise):
    pass
  rows.append(
    Stage(
      "stream: all stages overlapped",
      time.perf_counter() - start,
      stream.timings.frames,
      _peak_mb(),
    )
  )
  command = [
    sys.executable,
    "-m",
    "drml_jax.predict",
    clip,
    *model_flags(model),
    "--out",
    os.path.join(folder, "clip.csv"),
    "--overwrite",
    "--batch-size",
    str(batch_size),
    "--no-progress",
  ]
  seconds, peak = _process(command, _environment(folder))
  rows.append(
    Stage(
      f"clip end to end, batch {batch_size} compiled", seconds, frames, peak
    )
  )
  seconds, peak = _process(command, _environment(folder))
  rows.append(Stage("clip end to end, warm cache", seconds, frames, peak))
  return rows


def detector_table() -> str:
  """Precision and recall of the face detector on the labelled set, by kind."""
  items = sample_media.labelled_set()
  detector = Detector()
  kinds = sorted({item.kind for item in items})
  lines = [
    "| images | count | faces | found | false alarms | precision | recall | ms/image |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ]
  for kind in [*kinds, "all"]:
    chosen = [i for i in items if kind in ("all", i.kind)]
    result = sample_media.score(detector, chosen)
    lines.append(
      f"| {kind} | {len(chosen)} | {result['tp'] + result['fn']} |"
      f" {result['tp']} | {result['fp']} | {result['precision']:.3f} |"
      f" {result['recall']:.3f} | {result['ms_per_image']:.0f} |"
    )
  return "\n".join(lines)


def alignment_error_table(count: int = 60) -> str:
  """How far the detector's crops of synthetic faces, placed in frames at
  known rolls and scales, are from their training crops
  (`sample_media.alignment_error`), by roll."""
  detector = Detector()
  lines = [
    "| roll | faces | found | landmark error (px): mean | median | 90th percentile |",
    "| --- | --- | --- | --- | --- | --- |",
  ]
  items = sample_media.placed_faces(count)
  for roll in sorted({item.roll for item in items}):
    errors = []
    chosen = [item for item in items if item.roll == roll]
    for item in chosen:
      found = detector(item.image)
      if found:
        errors.append(sample_media.alignment_error(found[0], item))
    lines.append(
      f"| {roll:g} | {len(chosen)} | {len(errors)} | {np.mean(errors):.2f} |"
      f" {np.median(errors):.2f} | {np.percentile(errors, 90):.2f} |"
    )
  return "\n".join(lines)


def alignment_table(predictor) -> str:
  """How far a rolled face's AU probabilities are from the upright face's,
  aligned by its landmarks and not (the same square, upright)."""
  detector = Detector()
  lines = [
    "| photo | roll | aligned: mean / max abs difference | not levelled |",
    "| --- | --- | --- | --- |",
  ]
  for name in ("astronaut", "grace_hopper"):
    image, box = sample_media.face_photos()[name]
    upright = predictor(
      alignment.crop(image, detector(image)[0])[None]
    ).probabilities[0]
    for degrees in (-20, -10, 10, 20):
      rolled, _ = sample_media.roll(image, [box], degrees)
      found = detector(rolled)[0]
      cells = []
      for face in (found, dataclasses.replace(found, roll=0.0)):
        difference = np.abs(
          predictor(alignment.crop(rolled, face)[None]).probabilities[0]
          - upright
        )
        cells.append(f"{difference.mean():.3f} / {difference.max():.3f}")
      lines.append(f"| {name} | {degrees} | {cells[0]} | {cells[1]} |")
  return "\n".join(lines)


def saliency_table(model: dict, folder: str, per_au: int = 3) -> str:
  """Evidence maps' cost per face, and where they lie on synthetic faces
  (`saliency_check`): the model's region ratio per AU beside a randomly
  initialised full-size DRML's, and the two models' maps' rank correlation."""
  trained = load_predictor(**model, explains=True)
  if not set(trained.aus) <= set(DISFA_PLUS_AUS):
    return f"(no synthetic AU regions for AUs {trained.aus})"
  faces, masks = saliency_check.au_faces(trained.aus, per_au)
  start = time.perf_counter()
  trained.evidence(faces[:1])  # compiles (or reads the cache)
  compile_s = time.perf_counter() - start
  start = time.perf_counter()
  maps = trained.evidence(faces)
  ms = 1000 * (time.perf_counter() - start) / len(faces)
  random = load_predictor(checkpoint=random_checkpoint(folder), explains=True)
  random_maps = random.evidence(faces)
  ratios = [
    saliency_check.region_ratios(m, masks, trained.aus)
    for m in (maps, random_maps)
  ]
  lines = [
    f"{ms:.0f} ms a face ({saliency.STEPS} steps, all "
    f"{len(trained.aus)} AUs; first call {compile_s:.1f} s); rank "
    "correlation with the random model's maps: "
    f"{saliency_check.rank_correlation(maps, random_maps, signed=True):.2f} "
    "signed, "
    f"{saliency_check.rank_correlation(maps, random_maps):.2f} of |evidence|",
    "",
    "| region ratio | "
    + " | ".join(f"AU{au}" for au in trained.aus)
    + " | AUs >= 2 |",
    "| --- " * (len(trained.aus) + 2) + "|",
  ]
  for name, values in zip(("this model", "random DRML"), ratios):
    lines.append(
      f"| {name} | "
      + " | ".join(f"{values[au]:.2f}" for au in trained.aus)
      + f" | {sum(v >= 2 for v in values.values())} |"
    )
  return "\n".join(lines)


def _raise(error: Exception) -> None:
  raise error


def table(rows: list[Stage]) -> str:
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
  parser = cli.parser("python -m drml_jax.benchmark.predict", __doc__)
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


@cli.command(measures=True)
def main(argv: list[str]) -> int:
  args = parse_args(argv)
  with tempfile.TemporaryDirectory() as folder:
    model = (
      {"workdir": args.workdir}
      if args.workdir
      else {"checkpoint": random_checkpoint(folder)}
    )
    rows = startup_rows(model, folder, args.photo_runs)
    rows += clip_rows(model, folder, args.frames, args.batch_size)
    print(table(rows))
    print("\nfaces found in sample_media.labelled_set():")
    print(detector_table())
    print(
      "\nsynthetic faces placed at known rolls and scales: their crops"
      " against their training crops:"
    )
    print(alignment_error_table())
    print("\nAU probabilities of a rolled face against the upright one's:")
    print(alignment_table(load_predictor(**model)))
    print(
      f"\nsaliency on {SALIENCY_FACES_PER_AU} synthetic faces an AU, each "
      "showing it alone (saliency_check):"
    )
    print(saliency_table(model, folder, SALIENCY_FACES_PER_AU))
  return 0


if __name__ == "__main__":
  sys.exit(main())
