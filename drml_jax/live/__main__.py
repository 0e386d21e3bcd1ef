"""Action units live, from a camera, a network stream or a video file: one JSON line per frame.

  python -m drml_jax.live 0 --workdir workdirs/quick            # camera 0
  python -m drml_jax.live rtsp://host/stream --workdir W --out live.csv
  python -m drml_jax.live clip.mp4 --onnx drml.onnx | my_experiment.py

The source is read as fast as it gives frames (a video file at its own frame
rate); the newest frame is processed, and frames that arrive while the model
is busy are dropped and counted, never queued. Each processed frame is one
JSON object on stdout, flushed at once: source, frame, timestamp_s,
capture_time and ready_time (seconds since the epoch), latency_ms, seen and
dropped (counts so far), and faces, each with predict's CSV names (face_id,
face_x ... AU01 ... AU01_c ..., and AU01_r ... intensities for a model with
the intensity head). --out appends the same rows to a CSV as
they come (predict's columns, then capture_time, ready_time, latency_ms),
flushed per frame. Ctrl-C, the source's end, or a stall of --stall-timeout
seconds ends the run with a summary on stderr. docs/predict.md (Live) shows
a program reading the stream.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time

from drml_jax import cli
from drml_jax.live import analysis, engines, sources
from drml_jax.predict.stream import COLUMNS, au_columns
from drml_jax.runtime import signals


def parse_args(argv=None) -> argparse.Namespace:
  parser = cli.parser("python -m drml_jax.live", __doc__)
  parser.add_argument(
    "source",
    metavar="SOURCE",
    help="a camera index (0), a stream URL (rtsp, http, udp, tcp ...) or a"
    " video file, played at its frame rate",
  )
  engines.add_flags(parser)
  parser.add_argument(
    "--out", help="also append each frame's rows to this CSV, as they come"
  )
  parser.add_argument(
    "--overwrite", action="store_true", help="replace an existing --out"
  )
  parser.add_argument(
    "--stall-timeout",
    type=float,
    default=sources.STALL_S,
    metavar="SECONDS",
    help="end when the source gives no frame for this long (default:"
    " %(default)g)",
  )
  return parser.parse_args(argv)


def _say(line: str) -> None:
  print(line, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
  """Predicts the source's frames until it ends or Ctrl-C; returns the exit status."""
  if args.stall_timeout <= 0:
    raise ValueError(
      f"--stall-timeout {args.stall_timeout:g}: give a positive number of"
      " seconds"
    )
  if args.out:
    cli.check_free(args.out, args.overwrite)
  source = sources.open_source(args.source, args.stall_timeout)
  predictor, engine_line = engines.from_flags(args)
  _say(f"{engine_line}; reading {source.name}; Ctrl-C ends")
  analyst = analysis.Analyst(predictor)
  viewer = analyst.viewer()
  latencies = analysis.Latencies()
  processed, started = 0, time.time()
  table = (
    open(args.out, "w", newline="", encoding="utf-8") if args.out else None
  )
  try:
    writer = table and csv.writer(table, lineterminator="\n")
    if writer:
      writer.writerow(
        [
          *COLUMNS,
          *au_columns(predictor.aus, predictor.has_intensity),
          *analysis.TIME_COLUMNS,
        ]
      )
      table.flush()
    with signals.caught() as received, sources.Latest(source) as latest:
      while not received.signum and (frame := latest.next()) is not None:
        job = analysis.Job(
          viewer, source.name, frame.index, frame.timestamp_s, frame.image
        )
        [result] = analyst([job])
        ready = time.time()
        fields = analysis.record(
          result,
          predictor.aus,
          frame.capture_time,
          ready,
          seen=latest.seen,
          dropped=latest.dropped,
        )
        latencies.add(fields["latency_ms"])
        processed += 1
        if writer:
          writer.writerows(
            analysis.csv_rows(
              result, predictor.aus, fields, predictor.has_intensity
            )
          )
          table.flush()
        if not _emit(fields):
          latest.ended = "stdout was closed (the reading program ended)"
          break
      ended = "stopped by a signal" if received.signum else latest.ended
      seen, dropped = latest.seen, latest.dropped
  finally:
    if table:
      table.close()
  seconds = max(time.time() - started, 1e-9)
  p50, p95 = latencies.percentile(50), latencies.percentile(95)
  _say(
    f"{source.name}: {ended}; {seen} frames seen, {processed} processed"
    f" ({processed / seconds:.1f}/s), {dropped} dropped; latency p50"
    f" {_ms(p50)}, p95 {_ms(p95)}"
    + (f"; rows in {args.out}" if args.out else "")
  )
  return 0


def _emit(fields: dict) -> bool:
  """Writes one JSON line to stdout, flushed; False once the reader is gone."""
  try:
    print(json.dumps(fields), flush=True)
    return True
  except BrokenPipeError:
    # Python would report the pipe again when it flushes stdout at exit.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return False


def _ms(value: float | None) -> str:
  return "-" if value is None else f"{value:.0f} ms"


@cli.command
def main(argv: list[str]) -> int:
  cli.setup_logging(stream=sys.stderr)  # stdout carries the JSON alone
  return run(parse_args(argv))


if __name__ == "__main__":
  sys.exit(main())
