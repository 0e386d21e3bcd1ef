"""A corpus as units of work, their CSVs, and what an earlier run completed.

  paths = media_paths(["clips/", "photos/"], lists=["more.txt"])
  units = plan(paths)                   # a unit per video, per photo batch
  manifest = Manifest(out_dir)          # the rows of earlier runs
  todo = [u for u in units if not manifest.complete(u)]
  manifest.record(row)                  # a unit done (`row`)

A video is one unit (tracking needs its frames in order); the photos of a
folder are cut into batches of PHOTOS_PER_UNIT, in their sorted order. A
unit's CSV mirrors its input's path under the out-dir: `clips/a.mp4` ->
`OUT/clips/a.mp4.csv`, the photos of `photos/` -> `OUT/photos/photos_0001.csv`,
... A path is mirrored as given relative to the current folder; one outside
it by its absolute path (`/data/a.mp4` -> `OUT/data/a.mp4.csv`).

`OUT/manifest.csv` has a row per unit (MANIFEST_COLUMNS): its input (a
video's path, or a batch's first and last photo, count and a digest of its
list), its CSV relative to the out-dir (a file only if some frame could be
read), ok or failed, its frames, faces and seconds, and the one-line
reasons it failed (joined by " | "). A unit is complete when its CSV
exists (written by a rename, so present means whole) and its manifest row
says ok for the same input; any other unit is done again. Nothing here
imports Ray.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import os
import time

from drml_jax.predict import media
from drml_jax.store.workdir import write_atomic

PHOTOS_PER_UNIT = 256
MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = (
  "input",
  "output",
  "status",
  "frames",
  "faces",
  "seconds",
  "error",
)
OK, FAILED = "ok", "failed"


@dataclasses.dataclass(frozen=True)
class Unit:
  """A video, or a batch of photos of one folder, and its CSV."""

  input: str  # the manifest's input cell
  paths: tuple[str, ...]  # the media files, in order
  output: str  # the CSV's path relative to the out-dir


def read_list(path: str) -> list[str]:
  """The paths a list file names, one a line (blank lines and lines
  starting with # skipped); ValueError in one line for a missing list or
  missing paths."""
  try:
    with open(path, encoding="utf-8") as f:
      lines = [line.strip() for line in f]
  except OSError as error:
    raise ValueError(
      f"--list {path}: cannot read it ({error.strerror}); pass a text file "
      "of paths, one a line"
    ) from None
  paths = [line for line in lines if line and not line.startswith("#")]
  missing = [p for p in paths if not os.path.exists(p)]
  if missing:
    raise ValueError(
      f"--list {path} names {len(missing)} path(s) that do not exist, "
      f"first {missing[0]}; paths are read from the current folder "
      f"({os.getcwd()}): fix them or leave them out"
    )
  if not paths:
    raise ValueError(f"--list {path} names no path: one a line")
  return paths


def media_paths(inputs: list[str], lists: list[str] = ()) -> list[str]:
  """The media files of `inputs` and of the lists' paths, in order, each
  once; ValueError in one line if any input is bad (`media.expand`'s
  reasons) or none is given."""
  named = list(inputs)
  for path in lists:
    named += read_list(path)
  if not named:
    raise ValueError("no input: give folders, files or --list FILE")
  paths, failures = media.expand(named)
  if failures:
    more = len(failures) - 1
    raise ValueError(
      str(failures[0]) + (f" (and {more} more bad input(s))" if more else "")
    )
  seen, unique = set(), []
  for path in paths:
    full = os.path.abspath(path)
    if full not in seen:
      seen.add(full)
      unique.append(path)
  return unique


def mirrored(path: str) -> str:
  """`path` relative to the current folder, or, outside it, its absolute
  path without the leading separator: where its CSV goes under the out-dir."""
  full = os.path.abspath(path)
  relative = os.path.relpath(full)
  if relative == os.pardir or relative.startswith(os.pardir + os.sep):
    return full.lstrip(os.sep)
  return relative


def _batch_input(photos: list[str]) -> str:
  """A photo batch's manifest cell: first and last photo, count, and a
  digest of the whole list (a renamed or added photo changes it)."""
  digest = hashlib.sha256("\n".join(photos).encode()).hexdigest()[:12]
  count = f"{len(photos)} photo{'s' if len(photos) > 1 else ''}"
  return f"{photos[0]} .. {photos[-1]} ({count}, {digest})"


def plan(
  paths: list[str], photos_per_unit: int = PHOTOS_PER_UNIT
) -> list[Unit]:
  """The units of `paths`: a video each, in order, then each folder's
  photos in batches, folders in the order their first photo came.
  ValueError in one line if two would write one CSV."""
  units, folders = [], {}
  for path in paths:
    if media.is_video(path):
      units.append(Unit(path, (path,), mirrored(path) + ".csv"))
    else:
      folders.setdefault(os.path.dirname(path), []).append(path)
  for folder, photos in folders.items():
    for number, start in enumerate(range(0, len(photos), photos_per_unit), 1):
      batch = photos[start : start + photos_per_unit]
      output = os.path.normpath(
        os.path.join(mirrored(folder or "."), f"photos_{number:04d}.csv")
      )
      units.append(Unit(_batch_input(batch), tuple(batch), output))
  writers = {}
  for unit in units:
    other = writers.setdefault(unit.output, unit)
    if other is not unit:
      raise ValueError(
        f"{other.paths[0]} and {unit.paths[0]} would both write "
        f"{unit.output} under --out-dir: predict them into separate ones"
      )
  return units


def expected_frames(unit: Unit, every: int) -> int:
  """The frames predict will read of `unit`, as the containers tell
  (a video that tells none counts 0)."""
  return sum(media.frame_count(path, every) or 0 for path in unit.paths)


def check_out_dir(out_dir: str) -> None:
  """ValueError in one line unless `out_dir` is a folder this process can
  write, or can be made in one."""
  if os.path.exists(out_dir) and not os.path.isdir(out_dir):
    raise ValueError(
      f"--out-dir {out_dir} is a file: pass a folder (made if missing)"
    )
  existing = os.path.abspath(out_dir)
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.access(existing, os.W_OK | os.X_OK):
    raise ValueError(
      f"--out-dir {out_dir}: {existing} is not writable by this user; pass "
      "a folder you can write"
    )


def row(
  unit: Unit, *, frames: int, faces: int, seconds: float, errors: list[str]
) -> dict:
  """A unit's manifest row: ok when it was read whole, without an error."""
  return {
    "input": unit.input,
    "output": unit.output,
    "status": FAILED if errors or not frames else OK,
    "frames": str(frames),
    "faces": str(faces),
    "seconds": f"{seconds:.2f}",
    "error": " | ".join(errors),
  }


class Manifest:
  """OUT/manifest.csv's rows by output: an earlier run's, and each unit's
  as it finishes, written at most every `every_s` seconds (and by `save`)."""

  def __init__(self, out_dir: str, every_s: float = 1.0):
    self.path = os.path.join(out_dir, MANIFEST)
    self.out_dir = out_dir
    self.every_s = every_s
    self.rows = self._read()
    self.saved_at = time.monotonic()
    self.changed = False
    self.recorded: set[str] = set()  # the outputs of this run's units

  def _read(self) -> dict[str, dict]:
    """The rows on disk ({} without a manifest); ValueError in one line
    for a file that is not one."""
    if not os.path.isfile(self.path):
      return {}
    with open(self.path, newline="", encoding="utf-8") as f:
      reader = csv.DictReader(f)
      if tuple(reader.fieldnames or ()) != MANIFEST_COLUMNS:
        raise ValueError(
          f"{self.path} is not a corpus manifest (its columns are not "
          f"{', '.join(MANIFEST_COLUMNS)}): pass another --out-dir"
        )
      return {r["output"]: r for r in reader}

  def complete(self, unit: Unit) -> bool:
    """Whether an earlier run completed `unit`: its CSV is there and its
    row says ok for the same input."""
    recorded = self.rows.get(unit.output)
    return (
      recorded is not None
      and recorded["status"] == OK
      and recorded["input"] == unit.input
      and os.path.isfile(os.path.join(self.out_dir, unit.output))
    )

  def record(self, row: dict) -> None:
    """A finished unit's row, replacing an earlier run's."""
    self.rows[row["output"]] = row
    self.recorded.add(row["output"])
    self.changed = True
    if time.monotonic() - self.saved_at >= self.every_s:
      self.save()

  def save(self) -> None:
    """Writes the rows, sorted by output, atomically, if any changed."""
    if not self.changed:
      return
    text = io.StringIO()
    writer = csv.DictWriter(text, MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(self.rows[name] for name in sorted(self.rows))
    write_atomic(self.path, text.getvalue())
    self.saved_at, self.changed = time.monotonic(), False
