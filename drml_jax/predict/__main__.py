"""Predicts action units on your own photos and videos: one CSV row per face per frame.

  python -m drml_jax.predict photos/ --workdir workdirs/quick --out photos.csv
  python -m drml_jax.predict clip.mp4 --checkpoint model.pth --every 5 --plot
  python -m drml_jax.predict crops/ --workdir W --faces aligned   # already face crops

Inputs are image files, folders (recursive, sorted) and videos (mp4, avi,
mov, mkv), mixed. Faces are found at any angle (OpenCV's cascades, offline),
levelled by their eyes and cropped to the framing DISFA+ was trained on,
then preprocessed as evaluation does; in a video each person keeps one
face_id. Columns: file, frame, timestamp_s, face_id, face_x, face_y,
face_w, face_h, face_roll, face_view, face_score, success, then AU01 ...
probabilities and AU01_c ... occurrences. A frame without a face keeps its
row, success 0. A bad input is named on stderr and skipped (exit status 1);
the CSV is written atomically with everything that could be read. The model
is kept exported in the cache (~/.cache/drml; DRML_CACHE=off turns it off),
so a second run starts in seconds.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import time

import numpy as np
from tqdm import tqdm

from data_pipeline import errors
from drml_jax import cli
from drml_jax.predict import media
from drml_jax.predict.predictor import DEFAULT_BATCH_SIZE, Predictor
from drml_jax.predict.saved_predictor import load_predictor
from drml_jax.predict.stream import COLUMNS, Stream, au_columns, csv_rows
from drml_jax.store import workdir

SHEET_FACES = 64  # faces shown on the images' contact sheet


def parse_args(argv=None) -> argparse.Namespace:
  parser = cli.parser("python -m drml_jax.predict", __doc__)
  parser.add_argument(
    "inputs", nargs="+", metavar="INPUT", help="image files, folders and videos"
  )
  model = parser.add_mutually_exclusive_group(required=True)
  model.add_argument(
    "--workdir", help="a drml_jax.train work directory (its best checkpoint)"
  )
  model.add_argument(
    "--checkpoint", help="an orbax checkpoint directory or a PyTorch DRML .pth"
  )
  parser.add_argument(
    "--out", default="predictions.csv", help="the CSV (default: %(default)s)"
  )
  parser.add_argument(
    "--overwrite", action="store_true", help="replace an existing --out"
  )
  parser.add_argument(
    "--faces",
    choices=("detect", "aligned"),
    default="detect",
    help="detect faces (default), or take each input as a face crop",
  )
  parser.add_argument(
    "--every", type=cli.positive_int, default=1, help="every Nth video frame"
  )
  parser.add_argument(
    "--batch-size", type=cli.positive_int, default=DEFAULT_BATCH_SIZE
  )
  parser.add_argument(
    "--aus",
    type=cli.au_list,
    default=None,
    help="the checkpoint's AUs, e.g. 1,2,4 (default: the run's dataset's, "
    "else DISFA+'s 12 or DISFA's 8)",
  )
  parser.add_argument(
    "--plot",
    action="store_true",
    help="PNGs beside --out: each video's AUs over time, the images' faces",
  )
  parser.add_argument("--no-progress", dest="progress", action="store_false")
  return parser.parse_args(argv)


def _error(error: Exception) -> None:
  tqdm.write(f"error: {errors.first_line(error)}", file=sys.stderr)


def plot_paths(out: str, paths: list[str]) -> dict[str | None, str]:
  """PNG per video (key: its path) and for the images (key None), beside `out`."""
  stem = os.path.splitext(out)[0]
  planned, used = {}, set()
  for path in paths:
    if media.is_video(path):
      name = f"{stem}_{os.path.splitext(os.path.basename(path))[0]}"
      candidate, copy = f"{name}.png", 1
      while candidate in used:
        copy += 1
        candidate = f"{name}_{copy}.png"
      planned[path] = candidate
      used.add(candidate)
    elif None not in planned:
      planned[None] = f"{stem}_faces.png"
  return planned


class _Plots:
  """What the plots need, gathered while the rows are written."""

  def __init__(self, predictor: Predictor):
    self.predictor = predictor
    self.videos: dict[str, tuple[list, list]] = {}
    self.crops, self.captions = [], []

  def add(self, frame) -> None:
    if media.is_video(frame.file):
      times, probabilities = self.videos.setdefault(frame.file, ([], []))
      times.append(frame.timestamp_s)
      probabilities.append(
        {item.face_id: item.probabilities for item in frame.faces}
      )
      return
    for item in frame.faces:
      if len(self.crops) < SHEET_FACES:
        active = [
          str(au) for au, on in zip(self.predictor.aus, item.occurrences) if on
        ]
        self.crops.append(item.crop)
        self.captions.append(
          f"{os.path.basename(frame.file)} #{item.face_id}\n"
          f"AU {' '.join(active) or 'none'}"
        )

  def write(self, planned: dict[str | None, str]) -> list[str]:
    # Imported here: matplotlib costs a second of start-up that only --plot needs.
    from drml_jax.reports import plots  # pylint: disable=import-outside-toplevel

    written = []
    aus = self.predictor.aus
    for path, (times, per_frame) in self.videos.items():
      ids = 1 + max((max(p, default=0) for p in per_frame), default=0)
      values = np.full((len(times), ids, len(aus)), np.nan, np.float32)
      for t, frame_probabilities in enumerate(per_frame):
        for face_id, p in frame_probabilities.items():
          values[t, face_id] = p
      times = np.array([np.nan if t is None else t for t in times])
      plots.au_timeline_plot(
        times,
        values,
        aus,
        self.predictor.thresholds,
        os.path.basename(path),
        planned[path],
      )
      written.append(planned[path])
    if self.crops:
      plots.face_sheet(self.crops, self.captions, planned[None])
      written.append(planned[None])
    return written


def _check_free(path: str, overwrite: bool) -> None:
  if os.path.isdir(path):
    raise ValueError(f"{path} is a folder: pass a file name for the output")
  if os.path.exists(path) and not overwrite:
    raise ValueError(
      f"{path} already exists: pass --overwrite to replace it, or another --out"
    )


def run(args: argparse.Namespace) -> int:
  """Predicts every input; returns the exit status (1 if some input failed)."""
  _check_free(args.out, args.overwrite)
  paths, errors = media.expand(args.inputs)
  for error in errors:
    _error(error)
  if not paths:
    return 2
  planned = plot_paths(args.out, paths) if args.plot else {}
  for path in planned.values():
    _check_free(path, args.overwrite)

  def load() -> Predictor:  # while the first frames are decoded and searched
    predictor = load_predictor(
      workdir=args.workdir,
      checkpoint=args.checkpoint,
      aus=args.aus,
      batch_size=args.batch_size,
    )
    tqdm.write(
      f"predicting with {predictor.description} ({predictor.mode}, "
      f"{predictor.normalization}; AUs {' '.join(map(str, predictor.aus))})"
    )
    return predictor

  failed = len(errors)

  def on_error(error):
    nonlocal failed
    failed += 1
    _error(error)

  total = (
    sum(media.frame_count(path, args.every) or 0 for path in paths) or None
  )
  rows, gathered = [], None
  stream = Stream(load, detect=args.faces == "detect", every=args.every)
  faces = 0
  start = time.perf_counter()
  with tqdm(
    total=total, unit="frame", disable=not args.progress, file=sys.stderr
  ) as bar:
    for frame in stream(paths, on_error):
      rows += csv_rows(frame, len(stream.predictor.aus))
      faces += len(frame.faces)
      if args.plot:
        gathered = gathered or _Plots(stream.predictor)
        gathered.add(frame)
      bar.update()
  seconds = time.perf_counter() - start
  frames = stream.timings.frames
  if frames == 0:
    return 2  # every input failed, each said why; nothing to write
  text = io.StringIO()
  writer = csv.writer(text, lineterminator="\n")
  writer.writerow(list(COLUMNS) + au_columns(stream.predictor.aus))
  writer.writerows(rows)
  workdir.write_atomic(args.out, text.getvalue())
  written = gathered.write(planned) if gathered else []
  print(
    f"wrote {args.out}: {frames} frames, {faces} faces, {frames / seconds:.1f} frames/s"
    + "".join(f"; {path}" for path in written)
  )
  return 1 if failed else 0


@cli.command
def main(argv: list[str]) -> int:
  return run(parse_args(argv))


if __name__ == "__main__":
  sys.exit(main())
