"""The files of a training work directory, and atomic writes.

  <workdir>/config.json       the resolved config
  <workdir>/checkpoints/      orbax: the latest step (resume) and the best by
                              the selection split's mean F1
  <workdir>/metrics.jsonl     one record per log interval and per evaluation
  <workdir>/tensorboard/      the same records as TensorBoard scalars
  <workdir>/results.md        the per-AU tables at the end
  <workdir>/loss.png, f1_per_au.png   drml_jax.rendering.plots
  <workdir>/report.html       all of it on one page: drml_jax.rendering.run_page
  <workdir>/.lock             held by the one process writing the directory

With --fold all, <workdir>/fold<k>/ holds each fold's run as above and
<workdir>/folds.md the per-fold tables with their mean and standard deviation.

Every file is written whole (a temporary file, then a rename) or appended
line by line, so a killed run never leaves one half written.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import socket
import tempfile

CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"
METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"
RESULTS_FILE = "results.md"
REPORT_FILE = "report.html"
LOCK_FILE = ".lock"
FOLDS_FILE = "folds.md"


def fold_dir(workdir: str, fold: int) -> str:
  """The work directory of one fold of a --fold all run."""
  return os.path.join(workdir, f"fold{fold}")


class LockedError(RuntimeError):
  """Another process is writing the work directory."""


@contextlib.contextmanager
def lock(workdir: str, flag: str = "--workdir"):
  """Holds the work directory's lock, or raises LockedError naming its holder.

  An advisory `flock` on LOCK_FILE: the kernel releases it when the holder
  exits, however it dies, so a killed run never leaves it stuck. `flag` is
  the command's option for the folder, named in the errors.
  """
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise NotADirectoryError(
      f"{flag} {workdir} is a file, not a folder: pass a folder"
    )
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, LOCK_FILE)
  with open(path, "a+") as f:
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      f.seek(0)
      holder = f.read().strip() or "another process"
      raise LockedError(
        f"{workdir} is being written by {holder}: wait for it to end, "
        f"or pass another {flag}"
      ) from None
    f.seek(0)
    f.truncate()
    f.write(f"process {os.getpid()} on {socket.gethostname()}\n")
    f.flush()
    try:
      yield
    finally:
      f.seek(0)
      f.truncate()


# atomic_path's temporary files: NAME.<8 of tempfile's characters>.partial,
# left behind only by a process killed while writing.
PARTIAL_SUFFIX = ".partial"
_PARTIAL = re.compile(r"\.[a-z0-9_]{8}" + re.escape(PARTIAL_SUFFIX) + "$")


def remove_partials(folder: str) -> int:
  """Removes the temporary files of `atomic_path` that killed writers left
  anywhere under `folder`; returns how many."""
  removed = 0
  for root, _, names in os.walk(folder):
    for name in names:
      if _PARTIAL.search(name):
        try:
          os.remove(os.path.join(root, name))
          removed += 1
        except FileNotFoundError:
          pass
  return removed


def write_atomic(path: str, data: str | bytes) -> None:
  """Writes `path` through a temporary file and a rename: never half written."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with atomic_path(path) as partial:
    with open(partial, "wb" if isinstance(data, bytes) else "w") as f:
      f.write(data)


@contextlib.contextmanager
def atomic_path(path: str):
  """Yields a temporary path in `path`'s folder for the caller to write,
  renamed to `path` when the block ends and removed if it raises: for
  writers that take a path (a zip archive, an ONNX file)."""
  directory = os.path.dirname(os.path.abspath(path))
  descriptor, partial = tempfile.mkstemp(
    dir=directory, prefix=os.path.basename(path) + ".", suffix=PARTIAL_SUFFIX
  )
  os.close(descriptor)
  try:
    yield partial
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(partial, 0o666 & ~umask)
    os.replace(partial, path)
  except BaseException:
    if os.path.exists(partial):
      os.remove(partial)
    raise


def read_records(workdir: str) -> list[dict]:
  """The records of a work directory's metrics file (none if it has none)."""
  path = os.path.join(workdir, METRICS_FILE)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def _scalars(record: dict) -> dict[str, float]:
  """A record's numbers as TensorBoard tags: `kind/name`, dicts as `kind/name/AU<n>`."""
  scalars = {}
  for name, value in record.items():
    values = (
      {f"{name}/AU{key}": v for key, v in value.items()}
      if isinstance(value, dict)
      else {name: value}
    )
    for tag, number in values.items():
      if (
        name != "step"
        and isinstance(number, (int, float))
        and not isinstance(number, bool)
      ):
        scalars[f"{record['kind']}/{tag}"] = number
  return scalars


class MetricsLog:
  """Appends records {"kind", "step", ...} to metrics.jsonl and TensorBoard.

  Opening it for a run resumed at `resume_step` drops the records of later
  steps, which an interrupted run wrote after its last checkpoint, and the
  "test" records of a run's end, which the resumed run writes again.
  """

  def __init__(self, workdir: str, *, resume_step: int = 0):
    # TensorFlow's writer: the input pipeline has loaded TensorFlow already,
    # where tensorboardX would import torch into every run
    # (benchmarks/README.md#log).
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    self.path = os.path.join(workdir, METRICS_FILE)
    self.records = [
      r
      for r in read_records(workdir)
      if r["step"] <= resume_step and r["kind"] != "test"
    ]
    write_atomic(self.path, "".join(json.dumps(r) + "\n" for r in self.records))
    self._summary = tf.summary
    self._writer = tf.summary.create_file_writer(
      os.path.join(workdir, TENSORBOARD_DIR)
    )

  def write(self, record: dict) -> None:
    """Appends `record`; its numeric fields (and dicts of them) go to TensorBoard."""
    self.records.append(record)
    with open(self.path, "a") as f:
      f.write(json.dumps(record) + "\n")
    with self._writer.as_default(step=record["step"]):
      for tag, value in _scalars(record).items():
        self._summary.scalar(tag, value)
    self._writer.flush()

  def close(self) -> None:
    self._writer.close()
