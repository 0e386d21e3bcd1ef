"""TFDS builders of the AU datasets, and `build`, which the trainer calls.

  builder = build("synthetic_au", config="tiny")
  builder.as_dataset("train")
"""

from __future__ import annotations

import os
from typing import Iterable

from data_pipeline.builders.au_lists import AuLists
from data_pipeline.builders.base import SourceBuilder
from data_pipeline.builders.ck_plus import CkPlus
from data_pipeline.builders.disfa_plus import DisfaPlus
from data_pipeline.builders.synthetic_au import SyntheticAu
from data_pipeline.builders.tf_cpu import tfds
from data_pipeline.sources.base import DataError

BUILDERS: dict[str, type[SourceBuilder]] = {
    cls.name: cls for cls in (DisfaPlus, CkPlus, AuLists, SyntheticAu)}
ALIASES = {"synthetic": "synthetic_au"}


def check_name(kind: str, name, valid: Iterable) -> None:
  """Raises a one-line ValueError unless `name` is one of `valid`."""
  valid = list(valid)
  if name not in valid:
    raise ValueError(f"unknown {kind} {name!r}; valid: "
                     + (", ".join(map(str, valid)) or "none"))


def check_split(builder: tfds.core.DatasetBuilder, split: str) -> None:
  """Raises a one-line ValueError unless the dataset has `split`."""
  check_name(f"{builder.name} split", split, builder.info.splits.keys())


def default_data_dir() -> str:
  """$DRML_DATA_DIR, else ~/.cache/drml/tensorflow_datasets."""
  return os.path.expanduser(os.environ.get("DRML_DATA_DIR")
                            or "~/.cache/drml/tensorflow_datasets")


def build(name: str, *, data_dir: str | None = None,
          manual_dir: str | None = None,
          config: str | None = None) -> SourceBuilder:
  """The builder of dataset `name`, built first if `data_dir` lacks it.

  `manual_dir` is the dataset's folder as its owners distribute it (see the
  builder's MANUAL_DOWNLOAD_INSTRUCTIONS); synthetic_au needs none.
  """
  name = ALIASES.get(name, name)
  check_name("dataset", name, [*BUILDERS, *ALIASES])
  cls = BUILDERS[name]
  if config is not None:
    check_name(f"{name} config", config, cls.builder_configs)
  builder = cls(config=config, data_dir=data_dir or default_data_dir())
  if builder.data_path.exists():
    return builder
  if cls.MANUAL_DOWNLOAD_INSTRUCTIONS and not (
      manual_dir and os.path.isdir(manual_dir) and os.listdir(manual_dir)):
    raise DataError(f"{name} is not built in {builder.data_dir_root} and"
                    f" manual_dir {manual_dir!r} is not a folder with its"
                    " data: " + cls.MANUAL_DOWNLOAD_INSTRUCTIONS)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  return builder
