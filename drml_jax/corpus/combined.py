"""A corpus's CSVs as one Parquet table (--parquet) and as predict's report
page (--report).

  write_parquet("aus.parquet", csvs)
  write_report("aus.html", csvs, failures, predictor, every=1, detect=True)

The table holds every row of the CSVs, in their order, with their columns
(`file` says which input a row is of): `file` as text, the frame, face id,
box, success and occurrences as integers, the rest as floats; an empty
cell is null. The page is `predictions_page`'s, made from the CSVs: the
summary (the model, each input's frames and faces, the inputs that failed,
each AU's activity) and each video's AU timelines; the photos' face cards
are left out, their crops not being in the CSVs. Both are written
atomically. No Ray here.
"""

from __future__ import annotations

import csv
import itertools

import numpy as np

from drml_jax.predict.gathered import Gathered
from drml_jax.predict.predictor import BatchedPredictor, au_name
from drml_jax.predict.stream import FaceAUs, FrameAUs
from drml_jax.store.workdir import atomic_path

INTEGER_COLUMNS = ("frame", "face_id", "face_x", "face_y", "face_w", "face_h")


def _column_types(header: list[str]) -> dict:
  # Imported here: pyarrow, for --parquet only.
  import pyarrow as pa  # pylint: disable=import-outside-toplevel

  def kind(name: str):
    if name == "file":
      return pa.string()
    if name in INTEGER_COLUMNS or name == "success" or name.endswith("_c"):
      return pa.int64()
    return pa.float64()

  return {name: kind(name) for name in header}


def write_parquet(path: str, csvs: list[str]) -> int:
  """Writes the rows of `csvs` (one header, predict's) as one Parquet
  table, a CSV at a time; returns the rows written."""
  # Imported here: pyarrow, for --parquet only.
  import pyarrow.csv as pa_csv  # pylint: disable=import-outside-toplevel
  import pyarrow.parquet as pq  # pylint: disable=import-outside-toplevel

  rows, writer = 0, None
  with atomic_path(path) as partial:
    try:
      for source in csvs:
        with open(source, newline="", encoding="utf-8") as f:
          header = next(csv.reader(f))
        table = pa_csv.read_csv(
          source,
          convert_options=pa_csv.ConvertOptions(
            column_types=_column_types(header)
          ),
        )
        if writer is None:
          writer = pq.ParquetWriter(partial, table.schema)
        writer.write_table(table)
        rows += table.num_rows
    finally:
      if writer is not None:
        writer.close()
  return rows


def _values(row: dict, names: list[str], kind=float) -> np.ndarray:
  return np.array([kind(row[name]) for name in names])


def _frame(file: str, index: str, rows: list[dict], names: list[str]):
  """A frame of the CSV as the stream yielded it, without boxes or crops
  (which the page shows for photos only, from the kept faces)."""
  intensity = f"{names[0]}_r" in rows[0]
  faces = [
    FaceAUs(
      int(row["face_id"]),
      face=None,
      crop=None,
      probabilities=_values(row, names),
      occurrences=_values(row, [f"{n}_c" for n in names], int),
      intensities=_values(row, [f"{n}_r" for n in names])
      if intensity
      else None,
    )
    for row in rows
    if row["success"] == "1"
  ]
  seconds = rows[0]["timestamp_s"]
  return FrameAUs(file, int(index), float(seconds) if seconds else None, faces)


def gathered(csvs: list[str], failures: list[str], aus) -> Gathered:
  """What the page shows, from the rows of `csvs` (`aus`: the model's
  AUs) and the one-line reasons inputs failed."""
  names = [au_name(au) for au in aus]
  result = Gathered(keep_faces=0)
  for source in csvs:
    with open(source, newline="", encoding="utf-8") as f:
      for (file, index), rows in itertools.groupby(
        csv.DictReader(f), key=lambda row: (row["file"], row["frame"])
      ):
        result.add(_frame(file, index, list(rows), names))
  result.errors += failures
  return result


def write_report(
  path: str,
  csvs: list[str],
  failures: list[str],
  predictor: BatchedPredictor,
  *,
  every: int,
  detect: bool,
) -> None:
  """Writes predict's page of the corpus (see the module)."""
  # Imported here: the page's code and matplotlib, for --report only.
  from drml_jax.predict import predictions_page  # pylint: disable=import-outside-toplevel

  predictions_page.write(
    path,
    gathered(csvs, failures, predictor.aus),
    predictor,
    every=every,
    detect=detect,
  )
