"""TFDS builders of the AU datasets, named in data_pipeline.registry.

`check_name` and `check_split` reject a bad name in one line.
"""

from __future__ import annotations

from data_pipeline.errors import check_name
from data_pipeline.tf_cpu import tfds


def check_split(builder: tfds.core.DatasetBuilder, split: str) -> None:
  """Raises a one-line ValueError unless the dataset has `split`."""
  check_name(f"{builder.name} split", split, builder.info.splits.keys())
