"""Synthetic training faces placed in frames by a known similarity: the
truth that face alignment is measured against.

A synthetic face is rendered as a 200x200 training crop with its 49
landmarks, then turned by a roll, scaled and pasted into a larger frame. A
detector's face is aligned well when its crop (`alignment.crop_transform`)
takes the frame's landmarks back to where they lie in the training crop:
`alignment_error` is their mean distance there, in crop pixels.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from data_pipeline.sources.base import DISFA_PLUS_AUS
from data_pipeline.synthetic import faces
from drml_jax.predict import alignment

FRAME = (640, 480)  # width, height
BACKGROUND = 110  # grey level around the pasted face
SCALES = (0.9, 1.5)  # the range of a pasted face's scale


@dataclasses.dataclass(frozen=True)
class Placed:
  image: np.ndarray  # (H, W, 3) uint8 frame
  roll: float  # degrees the crop was turned by, counter-clockwise
  landmarks: np.ndarray  # (49, 2) in the frame's pixels
  crop_landmarks: np.ndarray  # (49, 2) in the training crop's pixels


def placed_faces(count: int, rolls=(-20, 0, 20), seed: int = 1) -> list[Placed]:
  """`count` new identities, each placed once at each of `rolls`, at the
  frame's centre and a random scale in SCALES."""
  rng = np.random.default_rng(seed)
  placed = []
  for _ in range(count):
    crop, landmarks = faces.render_frame(
      faces.sample_identity(rng), np.zeros(len(DISFA_PLUS_AUS))
    )
    landmarks = landmarks - 1.0  # MATLAB's 1-based pixels to 0-based
    for roll in rolls:
      matrix = cv2.getRotationMatrix2D((100, 100), roll, rng.uniform(*SCALES))
      matrix[:, 2] += FRAME[0] / 2 - 100, FRAME[1] / 2 - 100
      frame = np.full((FRAME[1], FRAME[0], 3), BACKGROUND, np.uint8)
      cv2.warpAffine(
        crop, matrix, FRAME, dst=frame, borderMode=cv2.BORDER_TRANSPARENT
      )
      placed.append(
        Placed(
          frame, roll, landmarks @ matrix[:, :2].T + matrix[:, 2], landmarks
        )
      )
  return placed


def alignment_error(face: alignment.Face, item: Placed) -> float:
  """Mean distance, in crop pixels, between the landmarks as `face`'s crop
  shows them and as the training crop does."""
  matrix = alignment.crop_transform(face)
  shown = item.landmarks @ matrix[:, :2].T + matrix[:, 2]
  return float(np.linalg.norm(shown - item.crop_landmarks, axis=1).mean())
