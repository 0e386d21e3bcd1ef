"""Converters from dataset label codes to the internal conventions.

The `from_*` functions return occurrence labels, int8: +1 positive, -1
negative, 0 ignore. `intensity_values` returns FACS intensities, int8 0..5
with `UNKNOWN_INTENSITY` (-1) for an uncoded one. A value a dataset's
convention does not allow raises `DataError` naming the source (a file,
usually with its line) and the offending value.
"""

from __future__ import annotations

import numpy as np

from data_pipeline.sources.base import UNKNOWN_INTENSITY, DataError

MAX_INTENSITY = 5


def _as_array(values) -> np.ndarray:
  array = np.asarray(values)
  if array.dtype == object or not np.issubdtype(array.dtype, np.number):
    raise TypeError(f"labels must be numbers, got dtype {array.dtype}")
  return array


def _reject(
  values: np.ndarray,
  bad: np.ndarray,
  source: str,
  allowed: str,
  what: str = "label value",
) -> None:
  if bad.any():
    where = f"{source}: " if source else ""
    value = values[bad].flat[0].item()
    raise DataError(
      f"{where}{what} {value!r} is not one of {allowed};"
      " check that the file belongs to this dataset"
    )


def from_plus_minus_one(values, *, source: str = "") -> np.ndarray:
  """{-1, 1} labels, as they are: -1 negative, +1 positive."""
  array = _as_array(values)
  _reject(array, (array != 1) & (array != -1), source, "{-1, 1}")
  return array.astype(np.int8)


def from_zero_one(values, *, source: str = "", unknown=None) -> np.ndarray:
  """{0, 1} labels: 0 is a negative (-1), 1 positive; `unknown` maps to 0."""
  array = _as_array(values)
  is_unknown = (
    array == unknown if unknown is not None else np.zeros(array.shape, bool)
  )
  allowed = "{0, 1}" if unknown is None else f"{{0, 1, {unknown}}}"
  _reject(array, (array != 0) & (array != 1) & ~is_unknown, source, allowed)
  return np.where(is_unknown, 0, np.where(array == 1, 1, -1)).astype(np.int8)


def intensity_values(values, *, source: str = "", unknown=None) -> np.ndarray:
  """FACS intensities: the integers 0..5 as they are, `unknown` (a dataset's
  code for an uncoded intensity, e.g. BP4D's 9) as UNKNOWN_INTENSITY."""
  array = _as_array(values)
  is_unknown = (
    array == unknown if unknown is not None else np.zeros(array.shape, bool)
  )
  valid = (array >= 0) & (array <= MAX_INTENSITY) & (array == np.round(array))
  allowed = f"the integers 0..{MAX_INTENSITY}"
  if unknown is not None:
    allowed += f" or {unknown} (unknown)"
  _reject(array, ~valid & ~is_unknown, source, allowed, what="intensity")
  return np.where(is_unknown, UNKNOWN_INTENSITY, array).astype(np.int8)


def from_intensity(
  values, threshold: int = 2, *, source: str = ""
) -> np.ndarray:
  """FACS intensities 0..5: >= threshold is +1, anything lower -1."""
  intensity = intensity_values(values, source=source)
  return np.where(intensity >= threshold, 1, -1).astype(np.int8)


def convert_rows(convert, rows, line_numbers, path, **kwargs) -> np.ndarray:
  """`convert(rows)` at once; on a bad value, the error names `path:line`.

  `rows[i]` came from line `line_numbers[i]` of the file at `path`; `kwargs`
  go to `convert` (one of the functions above).
  """
  rows = np.asarray(rows)
  try:
    return convert(rows, source=str(path), **kwargs)
  except DataError:
    for row, number in zip(rows, line_numbers):
      convert(row, source=f"{path}:{number}", **kwargs)
    raise
