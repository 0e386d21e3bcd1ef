"""What every command line shares: status lines on the terminal, one-line errors.

Command-line modules (`python -m drml_jax.train`, `evaluate`, `convert`,
`summary`, `benchmark`) parse arguments, call the library and report; no
library module imports them. Their `main` is wrapped by `command`, the one
place that turns the errors a user can cause into a single line.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from typing import Callable

from tqdm.contrib.logging import logging_redirect_tqdm

from data_pipeline import errors
from drml_jax.runtime import cache, host_memory

# Errors that a user's input or environment causes: reported in one line.
USER_ERRORS = (ValueError, OSError)
USER_ERROR_EXIT = 2
LOGGERS = ("drml_jax", "data_pipeline")


def fail(message: str, exit_code: int = USER_ERROR_EXIT) -> int:
  """Prints `error: message` on stderr; returns the exit code."""
  print(f"error: {message}", file=sys.stderr)
  return exit_code


class Parser(argparse.ArgumentParser):
  """Bad arguments are a one-line error (exit status 2), without the usage text."""

  def error(self, message):
    self.exit(USER_ERROR_EXIT, f"error: {message}\n")


def parser(prog: str, doc: str) -> Parser:
  """A command's parser: `doc`'s first line above the options, all of it
  below, as written."""
  return Parser(
    prog=prog,
    description=doc.splitlines()[0],
    formatter_class=argparse.RawDescriptionHelpFormatter,
    epilog=doc,
  )


def positive_int(text: str) -> int:
  """An argparse type: an integer of at least 1."""
  try:
    value = int(text)
  except ValueError:
    value = 0
  if value < 1:
    raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
  return value


def au_list(text: str) -> tuple[int, ...]:
  """An argparse type: AU numbers, comma-separated (1,2,4)."""
  try:
    return tuple(int(au) for au in text.split(","))
  except ValueError:
    raise argparse.ArgumentTypeError(
      f"{text!r} is not a comma-separated list of AU numbers, e.g. 1,2,4"
    ) from None


def add_model_flags(parser: argparse.ArgumentParser, onnx: bool = False):
  """A trained model's flags, as predict and export take them: --workdir or
  --checkpoint (the returned group: one of them is required), --aus,
  --intensity (the model must have the intensity head), and with `onnx`
  --onnx as a third choice (`check_model_flags`)."""
  model = parser.add_mutually_exclusive_group(required=True)
  model.add_argument(
    "--workdir", help="a drml_jax.train work directory (its best checkpoint)"
  )
  model.add_argument(
    "--checkpoint", help="an orbax checkpoint directory or a PyTorch DRML .pth"
  )
  if onnx:
    model.add_argument(
      "--onnx",
      help="an ONNX file from python -m drml_jax.export, run by onnxruntime",
    )
  parser.add_argument(
    "--aus",
    type=au_list,
    default=None,
    help="the checkpoint's AUs, e.g. 1,2,4 (default: the run's dataset's, "
    "else DISFA+'s 12 or DISFA's 8)",
  )
  add_intensity_flag(parser)
  return model


def add_intensity_flag(parser: argparse.ArgumentParser) -> None:
  """--intensity: the model must have the intensity head (checked with
  `drml_jax.predict.predictor.require_intensity`)."""
  parser.add_argument(
    "--intensity",
    action="store_true",
    help="require AU intensities (0-5): refuse a model without the "
    "intensity head (one trained with --intensity has it); without this "
    "flag they are given whenever the model has the head",
  )


def add_reading_flags(parser: argparse.ArgumentParser) -> None:
  """How predict and the corpus read their inputs: --faces (detect, or
  each input is a face crop), --every (every Nth video frame),
  --batch-size (faces a model call)."""
  # Imported here: the prediction package, for these commands only.
  from drml_jax.predict.predictor import DEFAULT_BATCH_SIZE  # pylint: disable=import-outside-toplevel

  parser.add_argument(
    "--faces",
    choices=("detect", "aligned"),
    default="detect",
    help="detect faces (default), or take each input as a face crop",
  )
  parser.add_argument(
    "--every", type=positive_int, default=1, help="every Nth video frame"
  )
  parser.add_argument(
    "--batch-size", type=positive_int, default=DEFAULT_BATCH_SIZE
  )


def check_model_flags(args: argparse.Namespace) -> None:
  """ValueError in one line for --aus beside --onnx, whose file names its own."""
  if getattr(args, "onnx", None) and args.aus:
    raise ValueError(
      f"--aus names a checkpoint's AUs, and {args.onnx} carries its own: "
      "drop --aus"
    )


def check_free(path: str, overwrite: bool) -> None:
  """ValueError in one line unless `path` may be written: not a folder, and
  not an existing file unless `overwrite` (--overwrite)."""
  if os.path.isdir(path):
    raise ValueError(f"{path} is a folder: pass a file name for the output")
  if os.path.exists(path) and not overwrite:
    raise ValueError(
      f"{path} already exists: pass --overwrite to replace it, or another --out"
    )


def setup_logging(verbose: bool = True, stream=None) -> None:
  """Status lines of the project's loggers go to stdout (or `stream`),
  message only."""
  handler = logging.StreamHandler(stream or sys.stdout)
  handler.setFormatter(logging.Formatter("%(message)s"))
  for name in LOGGERS:
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    logger.propagate = False


def command(
  main: Callable[[list[str]], int] | None = None, *, measures: bool = False
):
  """Wraps a command's `main(argv) -> exit code`: user errors become one line,
  and argparse's exits an exit code.

  Run as a program (argv from sys.argv), the command first turns on the
  persistent compilation cache (`cache.enable_compilation_cache()`) and
  applies `host_memory.configure()`, unless it `measures` (the benchmarks:
  they time compilation, and their PyTorch rows must run with glibc's
  defaults); a test that calls `main(argv)` leaves its own process as it
  is. `@command` and `@command(measures=True)` both work.
  """
  if main is None:
    return functools.partial(command, measures=measures)

  @functools.wraps(main)
  def run(argv: list[str] | None = None) -> int:
    if argv is None and not measures:
      cache.enable_compilation_cache()
      host_memory.configure()
    setup_logging()
    try:
      with logging_redirect_tqdm([logging.getLogger(name) for name in LOGGERS]):
        return main(sys.argv[1:] if argv is None else list(argv))
    except USER_ERRORS as error:
      return fail(errors.first_line(error))
    except SystemExit as stop:  # argparse: --help, or its one-line error
      return stop.code if isinstance(stop.code, int) else 0

  return run
