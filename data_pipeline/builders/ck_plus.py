"""CK+ (Lucey et al. 2010): peak frames, for testing DISFA+ models."""

from __future__ import annotations

from data_pipeline.builders.base import SourceBuilder
from data_pipeline.sources import ck_plus
from data_pipeline.sources.base import DISFA_PLUS_AUS


class CkPlus(SourceBuilder):
  """CK+ labelled with the DISFA+ AUs; one split, "test"."""

  MANUAL_DOWNLOAD_INSTRUCTIONS = (
    "CK+ is licensed: request it from its owners (Jeffrey Cohn's group,"
    " University of Pittsburgh), extract it and pass its folder, the one"
    " holding cohn-kanade-images/ and FACS/, as manual_dir."
  )
  aus = DISFA_PLUS_AUS

  def _source(self, dl_manager):
    return ck_plus.CKPlus(dl_manager.manual_dir)
