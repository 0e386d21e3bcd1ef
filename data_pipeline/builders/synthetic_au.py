"""Procedurally drawn faces in the DISFA+ layout: no download, no licence."""

from __future__ import annotations

import dataclasses

from data_pipeline import synthetic
from data_pipeline.builders.base import SourceBuilder
from data_pipeline.sources.base import DISFA_PLUS_AUS
from data_pipeline.tf_cpu import tfds


@dataclasses.dataclass(eq=False)
class SyntheticConfig(tfds.core.BuilderConfig):
  num_train_subjects: int = 12
  num_test_subjects: int = 4
  frames_per_subject: int = synthetic.FRAMES_PER_SUBJECT
  seed: int = 0


class SyntheticAu(SourceBuilder):
  """Generated under the data_dir's downloads/, then read as DISFA+."""

  BUILDER_CONFIGS = [
    SyntheticConfig(
      name="default",
      description=(f"12 + 4 subjects x {synthetic.FRAMES_PER_SUBJECT} frames."),
    ),
    SyntheticConfig(
      name="disfa_plus_size",
      frames_per_subject=3_578,
      description=(
        "12 + 4 subjects x 3,578 frames: 42,936 training images, DISFA+'s"
        " 42,929, for timing the protocol (benchmark.accelerator)."
      ),
    ),
    SyntheticConfig(
      name="tiny",
      num_train_subjects=2,
      num_test_subjects=1,
      frames_per_subject=8,
      description="2 + 1 subjects x 8 frames, for tests.",
    ),
  ]
  aus = DISFA_PLUS_AUS

  def _source(self, dl_manager):
    config = self.builder_config
    root = dl_manager.download_dir / self.name / config.name
    synthetic.generate(
      root,
      seed=config.seed,
      num_train_subjects=config.num_train_subjects,
      num_test_subjects=config.num_test_subjects,
      frames_per_subject=config.frames_per_subject,
    )
    return synthetic.source(root)
