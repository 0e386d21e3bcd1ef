"""TFDS builders of the AU datasets, named in data_pipeline.registry.

`check_name` and `check_split` reject a bad name in one line.
"""

from __future__ import annotations

from typing import Iterable

from data_pipeline.tf_cpu import tfds


def check_name(kind: str, name, valid: Iterable) -> None:
  """Raises a one-line ValueError unless `name` is one of `valid`."""
  valid = list(valid)
  if name not in valid:
    raise ValueError(
      f"unknown {kind} {name!r}; valid: "
      + (", ".join(map(str, valid)) or "none")
    )


def check_split(builder: tfds.core.DatasetBuilder, split: str) -> None:
  """Raises a one-line ValueError unless the dataset has `split`."""
  check_name(f"{builder.name} split", split, builder.info.splits.keys())
