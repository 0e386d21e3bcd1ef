"""Predicts action units on a corpus of videos and photos with Ray: a CSV per video, resumable.

  python -m drml_jax.corpus clips/ photos/ --workdir W --out-dir aus/
  python -m drml_jax.corpus --list videos.txt --checkpoint model.pth --out-dir aus/ --workers 4
  python -m drml_jax.corpus clips/ --workdir W --out-dir aus/ --parquet aus.parquet --report aus.html
  python -m drml_jax.corpus /nfs/clips --onnx /nfs/drml.onnx --out-dir /nfs/aus --address head:6379

Inputs are predict's (image files, folders, videos) and the paths that
--list files name, one a line (blank lines and # comments skipped; relative
paths, there as on the command line, are read from the current folder).
Each video is a unit of work (its frames in order, for tracking); each
folder's photos are cut into units of 256. A unit's CSV has predict's
columns and values (`python -m drml_jax.predict that_video --out x.csv`) and
mirrors its input's path under --out-dir: clips/a.mp4 -> OUT/clips/a.mp4.csv,
the photos of photos/ -> OUT/photos/photos_0001.csv, ... (an input outside
the current folder by its absolute path). A CSV is written atomically once
its unit is read to its end. OUT/manifest.csv has a row a unit (input,
output, status ok or failed, frames, faces, seconds, error), rewritten as
units finish.

The same command again skips the units done (their CSV there and their
manifest row ok) and does the rest: the failed, and those a killed or
interrupted run left. Ctrl-C (or SIGTERM) stops, the manifest written with
what finished. A worker killed mid-video is started again by Ray and the video
done again; no partial CSV is ever left.

Where: --workers N processes on this machine (default: one a 2 cores, at
least one), each with the model loaded once; --address HOST:PORT (or auto)
runs them on a running Ray cluster (`ray start --head`; the same default on
each machine),
whose machines must all see the inputs, the model and --out-dir at the same
paths (shared storage). A bad input (a folder without media, a list naming
missing paths, an --out-dir that is a file, an address nobody answers) is
one line, exit status 2, before anything is written; a unit that fails (a
corrupt video, an empty file) is named on stderr and in the manifest and
the others complete (exit status 1). --parquet and --report are written
over at each run, from every CSV of the inputs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

from tqdm import tqdm

from drml_jax import cli
from drml_jax.corpus import combined, engine, plan
from drml_jax.predict.settings import Settings, load
from drml_jax.runtime import signals
from drml_jax.store import workdir

INTERRUPTED_EXIT = 130  # as a shell reports a process ended by SIGINT


def parse_args(argv=None) -> argparse.Namespace:
  parser = cli.parser("python -m drml_jax.corpus", __doc__)
  parser.add_argument(
    "inputs", nargs="*", metavar="INPUT", help="image files, folders and videos"
  )
  parser.add_argument(
    "--list",
    action="append",
    default=[],
    metavar="FILE",
    help="a text file of inputs, one a line (repeatable)",
  )
  parser.add_argument(
    "--out-dir", required=True, help="the CSVs and manifest.csv (made)"
  )
  cli.add_model_flags(parser, onnx=True)
  cli.add_reading_flags(parser)
  parser.add_argument(
    "--workers",
    type=cli.positive_int,
    help=f"worker processes (default: one a {engine.CORES_PER_WORKER} cores "
    "of each machine, at least one)",
  )
  parser.add_argument(
    "--address",
    help="a running Ray cluster's HOST:PORT, or auto (default: Ray on this "
    "machine alone)",
  )
  parser.add_argument(
    "--parquet", metavar="FILE", help="also every CSV as one Parquet table"
  )
  parser.add_argument(
    "--report",
    metavar="HTML",
    help="also predict's page of the corpus: the summary, each video's AUs "
    "over time",
  )
  parser.add_argument(
    "--verbose", action="store_true", help="a line per unit as it finishes"
  )
  parser.add_argument("--no-progress", dest="progress", action="store_false")
  return parser.parse_args(argv)


@contextlib.contextmanager
def _locked(out_dir: str):
  """The out-dir's lock (`workdir.lock`): one run writes it at a time; a
  held one is a user error (ValueError, exit 2)."""
  with contextlib.ExitStack() as stack:
    try:
      stack.enter_context(workdir.lock(out_dir, flag="--out-dir"))
    except workdir.LockedError as error:
      raise ValueError(str(error)) from None
    yield


def _on_row(row: dict, verbose: bool) -> None:
  if row["status"] != plan.OK:
    for reason in row["error"].split(" | "):
      tqdm.write(f"error: {reason}", file=sys.stderr)
  elif verbose:
    tqdm.write(
      f"{row['input']}: {row['frames']} frames, {row['faces']} faces, "
      f"{row['seconds']} s -> {row['output']}"
    )


def _predict(
  args: argparse.Namespace, todo: list[plan.Unit], manifest: plan.Manifest
) -> bool:
  """Runs `todo` on Ray; False if Ctrl-C or SIGTERM stopped it (a second
  one stops at once). The handlers are set once Ray is joined: `ray.init`
  sets its own."""
  started = False
  try:
    frames = {
      unit.output: plan.expected_frames(unit, args.every) for unit in todo
    }
    started = engine.connect(args.address, args.workers)
    workers = args.workers or engine.default_workers()
    engine.check_workers(workers)
    with (
      signals.caught() as received,
      tqdm(
        total=sum(frames.values()) or None,
        unit="frame",
        disable=not args.progress,
        file=sys.stderr,
      ) as bar,
    ):

      def on_row(row: dict) -> None:
        manifest.record(row)
        _on_row(row, args.verbose)

      return engine.run(
        todo,
        Settings.of(args),
        args.out_dir,
        workers_wanted=workers,
        on_row=on_row,
        on_ready=lambda model: tqdm.write(
          f"predicting {len(todo)} units on {min(workers, len(todo))} "
          f"workers with {model}"
        ),
        bar=bar,
        frames=frames,
        stopped=lambda: received.signum is not None,
      )
  except KeyboardInterrupt:  # while Ray starts, or the second Ctrl-C
    return False
  finally:
    engine.disconnect(started)


def _combined(
  args: argparse.Namespace, units: list[plan.Unit], manifest: plan.Manifest
) -> list[str]:
  """--parquet and --report from every CSV of `units`; their paths."""
  rows = [manifest.rows.get(unit.output) for unit in units]
  csvs = [
    path
    for unit in units
    if os.path.isfile(path := os.path.join(args.out_dir, unit.output))
  ]
  written = []
  if args.parquet and csvs:
    combined.write_parquet(args.parquet, csvs)
    written.append(args.parquet)
  if args.report:
    failures = [
      reason
      for row in rows
      if row and row["status"] != plan.OK
      for reason in row["error"].split(" | ")
    ]
    combined.write_report(
      args.report,
      csvs,
      failures,
      load(Settings.of(args)),
      every=args.every,
      detect=args.faces == "detect",
    )
    written.append(args.report)
  return written


def run(args: argparse.Namespace) -> int:
  """Predicts the corpus; returns the exit status (see the module)."""
  cli.check_model_flags(args)
  units = plan.plan(plan.media_paths(args.inputs, args.list))
  plan.check_out_dir(args.out_dir)
  for path in (args.parquet, args.report):
    if path:
      cli.check_free(path, overwrite=True)
  if args.address:
    engine.check_address(args.address)
  with _locked(args.out_dir):
    workdir.remove_partials(args.out_dir)
    manifest = plan.Manifest(args.out_dir)
    todo = [unit for unit in units if not manifest.complete(unit)]
    start = time.perf_counter()
    finished = True
    if todo:
      try:
        finished = _predict(args, todo, manifest)
      finally:
        manifest.save()
        workdir.remove_partials(args.out_dir)
    seconds = time.perf_counter() - start
    done = [unit for unit in todo if unit.output in manifest.recorded]
    frames = sum(int(manifest.rows[unit.output]["frames"]) for unit in done)
    if not finished:
      print(
        f"interrupted: {len(done)} of {len(todo)} units done, in "
        f"{manifest.path}; run the same command again for the rest"
      )
      return INTERRUPTED_EXIT
    written = _combined(args, units, manifest)
  failed = sum(manifest.rows[unit.output]["status"] != plan.OK for unit in done)
  left = len(todo) - len(done)
  print(
    f"{args.out_dir}: {len(units) - failed - left} of {len(units)} units ok "
    f"({len(units) - len(todo)} from earlier runs), {failed} failed"
    + (f", {left} left undone (every worker died)" if left else "")
    + (f"; {frames} frames, {frames / seconds:.1f} frames/s" if done else "")
    + "".join(f"; {path}" for path in [manifest.path, *written])
  )
  return 1 if failed or left else 0


@cli.command
def main(argv: list[str]) -> int:
  return run(parse_args(argv))


if __name__ == "__main__":
  sys.exit(main())
