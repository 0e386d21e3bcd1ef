"""DISFA+ (Mavadati et al. 2016): 12 AUs, 9 subjects, aligned 200x200 faces."""

from __future__ import annotations

import dataclasses

from data_pipeline.builders.base import SourceBuilder
from data_pipeline.sources import disfa_plus
from data_pipeline.sources.base import DISFA_PLUS_AUS
from data_pipeline.tf_cpu import tfds


@dataclasses.dataclass(eq=False)
class ThresholdConfig(tfds.core.BuilderConfig):
  threshold: int = 2  # FACS intensity at or above which an AU is present.


class DisfaPlus(SourceBuilder):
  """DISFA+, split by subject as in the reproduction report."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = (
    "DISFA+ is licensed: request it from its owners (Mohammad H. Mahoor's"
    " group, University of Denver), extract it and pass its folder, the one"
    " holding Labels/ and FaceLandmarks/, as manual_dir."
  )
  BUILDER_CONFIGS = [
    ThresholdConfig(
      name=f"threshold{t}",
      threshold=t,
      description=f"AU present at intensity >= {t}.",
    )
    for t in range(1, 6)
  ]
  DEFAULT_BUILDER_CONFIG_NAME = "threshold2"
  aus = DISFA_PLUS_AUS

  def _source(self, dl_manager):
    return disfa_plus.DisfaPlus(
      dl_manager.manual_dir, threshold=self.builder_config.threshold
    )
