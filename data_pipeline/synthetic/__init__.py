"""A learnable synthetic AU dataset in the DISFA+ release layout.

Procedural 200x200 RGB faces; each of the 12 DISFA+ AUs (intensity 0..5)
moves or shades only its own part of the face (`AU_REGIONS`), more with
higher intensity. Subjects differ in face shape, skin, hair and feature
placement; frames in pose, lighting and noise; AUs follow DISFA+-like posed
trials with realistic co-occurrence. Deterministic for a seed, with a
subject-exclusive train/test split.

  root = generate("data/synthetic")      # or: python -m data_pipeline.prepare
  reader = source(root)                  #       synthetic --out DIR
  image = render_face(sample_identity(rng), intensities, sample_nuisance(rng))

Modules: `aus` (what each AU does, where), `pose` (nuisance, resampling,
regions), `faces` (subjects and frames), `painting` (drawing the face's
parts), `sequences` (intensities over trials), `dataset` (files on disk).
"""

from data_pipeline.synthetic.dataset import (
  FRAMES_PER_SUBJECT,
  METADATA,
  generate,
  source,
)
from data_pipeline.synthetic.faces import (
  Identity,
  render_face,
  render_frame,
  sample_identity,
)
from data_pipeline.synthetic.pose import (
  AU_REGIONS,
  Nuisance,
  region_mask,
  sample_nuisance,
)
from data_pipeline.synthetic.sequences import TRIALS, subject_trials
