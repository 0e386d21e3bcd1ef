"""The datasets by the names every command line uses, and `build`.

  builder = build("bp4d", fold=1, manual_dir="/data/bp4d_lists")
  builder.as_dataset("train")

Each name maps to a TFDS builder, the config built for a (fold,
dataset_config) pair, and its folds. Adding a dataset takes a source, a
builder and one entry in DATASETS.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib

from data_pipeline.builders import check_name
from data_pipeline.builders.au_lists import AuLists
from data_pipeline.builders.base import SourceBuilder
from data_pipeline.builders.ck_plus import CkPlus
from data_pipeline.builders.disfa_plus import DisfaPlus
from data_pipeline.builders.synthetic_au import SyntheticAu
from data_pipeline.sources.base import DataError
from data_pipeline.tf_cpu import tfds

FOLDS = (1, 2, 3)  # BP4D's and DISFA's subject-exclusive folds
# Beside a built dataset's records: what it was built from.
SOURCE_FILE = "source.json"
_HASHED_SUFFIXES = (".txt", ".csv")  # label and list files: their bytes count


@dataclasses.dataclass(frozen=True)
class Dataset:
  """A dataset name's builder, config and folds.

  Attributes:
    builder: the TFDS builder class.
    config: the builder config, a template of `fold` and `dataset_config`;
      empty is the builder's default.
    folds: the folds to choose from; empty when the dataset has none.
    trainable: False for a dataset with a test split only.
  """

  builder: type[SourceBuilder]
  config: str = ""
  folds: tuple[int, ...] = ()
  trainable: bool = True

  def config_name(self, fold: int, dataset_config: str) -> str | None:
    """The builder config to build; None for the builder's default."""
    return self.config.format(fold=fold, dataset_config=dataset_config) or None


DATASETS: dict[str, Dataset] = {
  "synthetic": Dataset(SyntheticAu, config="{dataset_config}"),
  "disfa_plus": Dataset(DisfaPlus, config="{dataset_config}"),
  "bp4d": Dataset(AuLists, config="bp4d_fold{fold}", folds=FOLDS),
  "disfa": Dataset(AuLists, config="disfa_fold{fold}", folds=FOLDS),
  "disfa_plus_lists": Dataset(AuLists, config="disfa_plus"),
  "ck_plus": Dataset(CkPlus, trainable=False),
}


def names(*, trainable: bool | None = None) -> tuple[str, ...]:
  """The dataset names; with `trainable`, only those that are (or are not)."""
  return tuple(
    name
    for name, dataset in DATASETS.items()
    if trainable is None or dataset.trainable == trainable
  )


def check(name: str, fold: int = 0) -> Dataset:
  """The entry of `name`; a one-line ValueError if `name` or `fold` is bad."""
  check_name("dataset", name, DATASETS)
  dataset = DATASETS[name]
  if dataset.folds and fold not in dataset.folds:
    *first, last = dataset.folds
    raise ValueError(
      f"--dataset {name} needs --fold"
      f" {', '.join(map(str, first))} or {last} (got {fold})"
    )
  return dataset


def default_data_dir() -> str:
  """$DRML_DATA_DIR, else ~/.cache/drml/tensorflow_datasets."""
  return os.path.expanduser(
    os.environ.get("DRML_DATA_DIR") or "~/.cache/drml/tensorflow_datasets"
  )


def build(
  name: str,
  *,
  fold: int = 0,
  dataset_config: str = "",
  data_dir: str = "",
  manual_dir: str = "",
) -> SourceBuilder:
  """The builder of dataset `name`, built first if `data_dir` lacks it.

  `dataset_config` picks the builder config of synthetic and disfa_plus;
  "" is the default. `data_dir` defaults to `default_data_dir()`.
  `manual_dir` is the dataset's folder as its owners distribute it (see the
  builder's MANUAL_DOWNLOAD_INSTRUCTIONS); synthetic needs none.
  """
  dataset = check(name, fold)
  cls = dataset.builder
  config = dataset.config_name(fold, dataset_config)
  if config is not None:
    check_name(f"{cls.name} config", config, cls.builder_configs)
  builder = cls(config=config, data_dir=data_dir or default_data_dir())
  if builder.data_path.exists():
    if manual_dir:
      _check_source(name, builder, manual_dir)
    return builder
  if cls.MANUAL_DOWNLOAD_INSTRUCTIONS and not (
    manual_dir and os.path.isdir(manual_dir) and os.listdir(manual_dir)
  ):
    raise DataError(
      f"{name} is not built in {builder.data_dir_root} and"
      f" manual_dir {manual_dir or None!r} is not a folder with"
      " its data: " + cls.MANUAL_DOWNLOAD_INSTRUCTIONS
    )
  builder.download_and_prepare(
    download_config=tfds.download.DownloadConfig(manual_dir=manual_dir or None)
  )
  if manual_dir:
    (builder.data_path / SOURCE_FILE).write_text(
      json.dumps(
        {
          "manual_dir": os.path.abspath(manual_dir),
          "fingerprint": source_fingerprint(manual_dir),
        }
      )
    )
  return builder


def source_fingerprint(folder) -> str:
  """A digest of a dataset folder: every file's path and size, and the bytes
  of its label and list files."""
  digest = hashlib.sha256()
  root = pathlib.Path(folder)
  for path in sorted(p for p in root.rglob("*") if p.is_file()):
    size = path.stat().st_size
    digest.update(f"{path.relative_to(root).as_posix()}\0{size}\0".encode())
    if path.suffix.lower() in _HASHED_SUFFIXES:
      digest.update(path.read_bytes())
  return digest.hexdigest()


def _check_source(name: str, builder, manual_dir: str) -> None:
  """Refuses a built dataset whose source differs from `manual_dir`'s data."""
  record = builder.data_path / SOURCE_FILE
  if not record.exists():
    return
  built_from = json.loads(record.read_text())
  if built_from["fingerprint"] != source_fingerprint(manual_dir):
    raise DataError(
      f"{name} in {builder.data_path} was built from {built_from['manual_dir']},"
      f" whose files differ from those in {manual_dir}: pass a new --data-dir"
      " to build it from this folder, or remove that folder to rebuild it"
    )


def aus(builder: tfds.core.DatasetBuilder) -> tuple[int, ...]:
  """The AU numbers of a built dataset, in label order."""
  return tuple(int(au) for au in builder.info.metadata["aus"])
