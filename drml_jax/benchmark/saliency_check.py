"""Whether evidence maps point where the synthetic faces' AUs act.

  faces, masks = au_faces(aus, per_au=6, seed=0)
  ratios = region_ratios(predictor.evidence(faces), masks, predictor)

The synthetic dataset's generator knows the pixels each AU can change at a
face's pose (`data_pipeline.synthetic.region_mask`): the brows for AU1, 2
and 4, the cheeks and lower lids for AU6, the nose for AU9, the mouth's
corners for AU12, 15 and 20, the chin for AU17, the mouth and jaw for AU25
and 26. `au_faces` draws faces of new subjects, at random poses, each
showing one AU at intensity 4 and no other. An AU's ratio is the share of
its maps' mass (|evidence|) that falls in its region, over the region's
share of the model's input, which is what a uniform map would score: 1 is
no better than chance, 2 is twice as concentrated.
"""

from __future__ import annotations

import numpy as np

from data_pipeline import synthetic
from data_pipeline.model_inputs import resize_matrix
from data_pipeline.sources.base import DISFA_PLUS_AUS

INTENSITY = 4


def au_faces(
  aus, per_au: int, seed: int = 0
) -> tuple[np.ndarray, list[np.ndarray]]:
  """(len(aus) * per_au, 200, 200, 3) uint8 faces, AU by AU, each showing
  only that AU, and each face's (200, 200) bool region of its AU."""
  rng = np.random.default_rng(seed)
  faces, masks = [], []
  for au in aus:
    intensities = [INTENSITY if a == au else 0 for a in DISFA_PLUS_AUS]
    for _ in range(per_au):
      nuisance = synthetic.sample_nuisance(rng)
      identity = synthetic.sample_identity(rng)
      faces.append(synthetic.render_face(identity, intensities, nuisance))
      masks.append(synthetic.region_mask(au, nuisance))
  return np.stack(faces), masks


def coverage(mask: np.ndarray, size: int, mode: str) -> np.ndarray:
  """A (200, 200) mask as the (size, size) share of each model input pixel
  it covers: resized as resize mode resizes the face, or its centre cut."""
  mask = mask.astype(np.float32)
  if mode != "resize":
    start = (mask.shape[0] - 170) // 2
    mask = mask[start : start + 170, start : start + 170]
  rows = resize_matrix(mask.shape[0], size)
  cols = resize_matrix(mask.shape[1], size)
  return rows @ mask @ cols.T


def region_ratios(
  maps: np.ndarray, masks: list[np.ndarray], aus, mode: str = "resize"
) -> dict[int, float]:
  """Per AU, its region's share of |evidence| over its share of the input.

  `maps` are (N, C, S, S) evidence of `au_faces`' N faces, in its order
  (per_au faces per AU of `aus`); the AU's own map of each face counts.
  """
  maps = np.abs(np.asarray(maps, np.float64))
  per_au = len(maps) // len(aus)
  ratios = {}
  for index, au in enumerate(aus):
    inside = uniform = 0.0
    for face in range(index * per_au, (index + 1) * per_au):
      cover = coverage(masks[face], maps.shape[-1], mode)
      own = maps[face, index]
      inside += (own * cover).sum() / own.sum()
      uniform += cover.mean()
    ratios[au] = inside / uniform
  return ratios


def rank_correlation(
  maps: np.ndarray, others: np.ndarray, signed: bool = False
) -> float:
  """Mean Spearman correlation between two sets of (N, C, S, S) maps of the
  same faces, map by map (1: the same ordering of pixels), of |evidence|
  or, `signed`, of the evidence itself."""
  # Imported here: scipy is needed only by this check.
  from scipy import stats  # pylint: disable=import-outside-toplevel

  if not signed:
    maps, others = np.abs(maps), np.abs(others)
  pairs = zip(
    np.reshape(maps, (-1, maps.shape[-2] * maps.shape[-1])),
    np.reshape(others, (-1, others.shape[-2] * others.shape[-1])),
  )
  return float(np.mean([stats.spearmanr(a, b).statistic for a, b in pairs]))
