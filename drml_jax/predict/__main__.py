"""Predicts action units on your own photos and videos: one CSV row per face per frame.

  python -m drml_jax.predict photos/ --workdir workdirs/quick --out photos.csv
  python -m drml_jax.predict clip.mp4 --checkpoint model.pth --every 5 --plot
  python -m drml_jax.predict crops/ --workdir W --faces aligned   # already face crops
  python -m drml_jax.predict photos/ clip.mp4 --workdir W --report aus.html  # one page
  python -m drml_jax.predict photos/ --onnx drml.onnx   # an exported model, onnxruntime
  python -m drml_jax.predict photo.jpg --workdir W --saliency --report aus.html

Inputs are image files, folders (recursive, sorted) and videos (mp4, avi,
mov, mkv), mixed. Faces are found at any angle with five landmarks (MTCNN,
offline), aligned by them to the framing DISFA+ was trained on, then
preprocessed as evaluation does; in a video each person keeps one face_id.
Columns: file, frame, timestamp_s, face_id, face_x, face_y, face_w, face_h,
face_roll, face_score, the landmarks x_36_41 x_42_47 x_30 x_48 x_54 and
y_36_41 ... (eye centres, nose tip, mouth corners), success, then AU01 ...
probabilities, AU01_c ... occurrences and, for a model with the intensity
head, AU01_r ... intensities (0-5; --intensity requires them). A frame
without a face keeps its row, success 0. A bad input is named on stderr and skipped (exit status 1);
the CSV is written atomically with everything that could be read. The model
is kept exported in the cache (~/.cache/drml; DRML_CACHE=off turns it off),
so a second run starts in seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from tqdm import tqdm

from data_pipeline import errors
from drml_jax import cli
from drml_jax.predict import media, saliency_files, settings
from drml_jax.predict.gathered import (
  SHEET_FACES,
  Gathered,
  plot_paths,
  write_plots,
)
from drml_jax.predict.predictor import BatchedPredictor
from drml_jax.predict.stream import Stream, csv_rows, write_csv


def parse_args(argv=None) -> argparse.Namespace:
  parser = cli.parser("python -m drml_jax.predict", __doc__)
  parser.add_argument(
    "inputs", nargs="+", metavar="INPUT", help="image files, folders and videos"
  )
  cli.add_model_flags(parser, onnx=True)
  parser.add_argument(
    "--out", default="predictions.csv", help="the CSV (default: %(default)s)"
  )
  parser.add_argument(
    "--overwrite", action="store_true", help="replace an existing --out"
  )
  cli.add_reading_flags(parser)
  parser.add_argument(
    "--plot",
    action="store_true",
    help="PNGs beside --out: each video's AUs over time, the images' faces",
  )
  parser.add_argument(
    "--report",
    metavar="HTML",
    help="also write one self-contained HTML page: the run's summary, each "
    "video's AUs over time, the faces and their AUs",
  )
  parser.add_argument(
    "--saliency",
    action="store_true",
    help="each face's evidence per AU (integrated gradients, ~1 s a face on "
    "a CPU): a sheet per face in OUT_saliency/, and on the --report page",
  )
  parser.add_argument(
    "--saliency-arrays",
    action="store_true",
    help="--saliency, and each face's maps as a (C, S, S) float32 .npy",
  )
  parser.add_argument("--no-progress", dest="progress", action="store_false")
  return parser.parse_args(argv)


def _check_saliency(args: argparse.Namespace, paths: list[str]) -> None:
  """--saliency's own conditions, before anything is written."""
  if args.onnx:
    raise ValueError(
      f"--saliency differentiates the JAX model, which {args.onnx} is not: "
      "give --workdir or --checkpoint"
    )
  folder = saliency_files.folder_beside(args.out)
  if os.path.exists(folder) and not args.overwrite:
    raise ValueError(
      f"{folder} already exists: pass --overwrite to write over it, or "
      "another --out"
    )
  if args.faces == "aligned":
    for path in paths:
      size = media.frame_size(path)
      if size and size[0] != size[1]:
        raise ValueError(
          f"{path} is {size[0]}x{size[1]}: --saliency with --faces aligned "
          "draws the maps over each input, which must be a square face "
          "crop; crop it square, or use --faces detect"
        )


def _error(error: Exception) -> None:
  tqdm.write(f"error: {errors.first_line(error)}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
  """Predicts every input; returns the exit status (1 if some input failed)."""
  cli.check_model_flags(args)
  cli.check_free(args.out, args.overwrite)
  if args.report:
    cli.check_free(args.report, args.overwrite)
  explain = args.saliency or args.saliency_arrays
  sheets = (
    saliency_files.SaliencyFiles(
      saliency_files.folder_beside(args.out), arrays=args.saliency_arrays
    )
    if explain
    else None
  )
  gathered = Gathered(
    keep_faces=SHEET_FACES if args.plot or args.report else 0,
    evidence=sheets.sheet_of if sheets else None,
  )

  def on_error(error):
    _error(error)
    gathered.error(error)

  paths, failures = media.expand(args.inputs)
  for error in failures:
    on_error(error)
  if not paths:
    return 2
  planned = plot_paths(args.out, paths) if args.plot else {}
  for path in planned.values():
    cli.check_free(path, args.overwrite)
  if explain:
    _check_saliency(args, paths)

  def load() -> BatchedPredictor:  # while the first frames are decoded
    # --intensity is checked here, before any frame is predicted or
    # anything written.
    predictor = settings.load(settings.Settings.of(args), explains=explain)
    tqdm.write(
      f"predicting with {predictor.description} ({predictor.mode}, "
      f"{predictor.normalization}; AUs {' '.join(map(str, predictor.aus))})"
    )
    return predictor

  total = (
    sum(media.frame_count(path, args.every) or 0 for path in paths) or None
  )
  rows = []
  stream = Stream(
    load, detect=args.faces == "detect", every=args.every, explain=explain
  )
  start = time.perf_counter()
  with tqdm(
    total=total, unit="frame", disable=not args.progress, file=sys.stderr
  ) as bar:
    for frame in stream(paths, on_error):
      rows += csv_rows(
        frame, stream.predictor.aus, stream.predictor.has_intensity
      )
      if sheets:
        sheets.write(frame, stream.predictor)
      gathered.add(frame)
      bar.update()
  seconds = time.perf_counter() - start
  frames = stream.timings.frames
  if frames == 0:
    return 2  # every input failed, each said why; nothing to write
  write_csv(
    args.out, rows, stream.predictor.aus, stream.predictor.has_intensity
  )
  written = write_plots(gathered, stream.predictor, planned) if planned else []
  if args.report:
    # Imported here: the page's code and matplotlib, for --report only.
    from drml_jax.predict import predictions_page  # pylint: disable=import-outside-toplevel

    predictions_page.write(
      args.report,
      gathered,
      stream.predictor,
      every=args.every,
      detect=args.faces == "detect",
    )
    written.append(args.report)
  if sheets and sheets.written:
    written.append(f"{sheets.written} evidence sheets in {sheets.folder}")
  print(
    f"wrote {args.out}: {frames} frames, {gathered.face_count} faces, "
    f"{frames / seconds:.1f} frames/s"
    + "".join(f"; {path}" for path in written)
  )
  return 1 if gathered.errors else 0


@cli.command
def main(argv: list[str]) -> int:
  return run(parse_args(argv))


if __name__ == "__main__":
  sys.exit(main())
