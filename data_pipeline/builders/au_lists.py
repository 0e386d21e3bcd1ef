"""Datasets in the list-file layout of public AU repositories.

`img/<path>` images beside `list/<DS>_{train,test}_{img_path,label}[_fold<k>]
.txt`: BP4D and DISFA in 3 subject-exclusive folds, and DISFA+.
"""

from __future__ import annotations

import dataclasses

from data_pipeline.builders.base import SourceBuilder
from data_pipeline.sources import list_files
from data_pipeline.sources.base import BP4D_AUS, DISFA_AUS, DISFA_PLUS_AUS
from data_pipeline.tf_cpu import tfds

_AUS = {"bp4d": BP4D_AUS, "disfa": DISFA_AUS, "disfa_plus": DISFA_PLUS_AUS}


@dataclasses.dataclass(eq=False)
class ListConfig(tfds.core.BuilderConfig):
  dataset: str = "bp4d"  # A key of `_AUS`.
  fold: int | None = None


def _configs() -> list[ListConfig]:
  folds = [
    ListConfig(
      name=f"{dataset}_fold{fold}",
      dataset=dataset,
      fold=fold,
      description=f"{dataset} fold {fold}.",
    )
    for dataset in ("bp4d", "disfa")
    for fold in (1, 2, 3)
  ]
  return folds + [
    ListConfig(
      name="disfa_plus",
      dataset="disfa_plus",
      description="DISFA+, one train/test split.",
    )
  ]


class AuLists(SourceBuilder):
  """One config per dataset and fold of the list-file layout."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = (
    "The images are licensed by each dataset's owners (BP4D: Binghamton"
    " University; DISFA and DISFA+: University of Denver): obtain them,"
    " put the aligned faces under img/ and the repository's lists under"
    " list/, and pass the folder holding both as manual_dir."
  )
  BUILDER_CONFIGS = _configs()

  @property
  def aus(self) -> tuple[int, ...]:
    return _AUS[self.builder_config.dataset]

  def _source(self, dl_manager):
    return list_files.ListFiles(
      dl_manager.manual_dir,
      self.builder_config.dataset,
      fold=self.builder_config.fold,
    )
