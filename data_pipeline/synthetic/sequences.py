"""AU intensity sequences: DISFA+-like posed trials with onset and offset.

A subject performs each trial of `TRIALS` once (a random subset when it has
fewer frames than trials): the trial's AUs rise from neutral to an apex
(intensity 2..5) and return, partner AUs often join them (AU1 with AU2, AU6
with AU12, AU25 with AU26...), and any other AU may show weak (intensity 1)
or, rarely, clear spontaneous activity.
"""

from __future__ import annotations

import numpy as np

from data_pipeline.sources.base import DISFA_PLUS_AUS

MAX_INTENSITY = 5
# (name part, the AUs posed), as in DISFA+'s A<k>_<AUs>_TrailNo_<n> trials.
TRIALS = (
  ("AU1", (1,)),
  ("AU1_2", (1, 2)),
  ("AU4", (4,)),
  ("AU5", (5,)),
  ("AU6_12", (6, 12)),
  ("AU9", (9,)),
  ("AU12", (12,)),
  ("AU15_17", (15, 17)),
  ("AU17", (17,)),
  ("AU20", (20,)),
  ("AU25", (25,)),
  ("AU25_26", (25, 26)),
  ("Surprise", (1, 2, 5, 25, 26)),
  ("Happiness", (6, 12, 25)),
  ("Sadness", (1, 4, 15)),
  ("Disgust", (4, 9, 17)),
  ("Fear", (1, 2, 4, 5, 20, 25)),
)
# AU -> (partner, probability that it joins when the AU is posed alone).
_PARTNERS = {
  1: ((2, 0.3),),
  2: ((1, 0.9),),
  4: ((9, 0.15),),
  9: ((4, 0.4),),
  6: ((12, 0.5),),
  12: ((6, 0.5), (25, 0.3)),
  15: ((17, 0.4),),
  25: ((26, 0.3),),
  26: ((25, 0.9),),
}
_SPONTANEOUS = 0.04  # probability of a clear (2..3) unposed activation
_WEAK = 0.15  # probability of a weak (1) unposed activation


def trial_name(index: int) -> str:
  """DISFA+-style name of `TRIALS[index]`, e.g. "A2_AU1_2_TrailNo_1"."""
  return f"A{index + 1}_{TRIALS[index][0]}_TrailNo_1"


def _envelope(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
  """Onset, apex, offset over t in 0..1, peaking at 1."""
  onset, rise = rng.uniform(0, 0.15), rng.uniform(0.15, 0.3)
  offset, fall = rng.uniform(0.6, 0.8), rng.uniform(0.15, 0.25)
  step = lambda v: np.clip(v, 0, 1) ** 2 * (3 - 2 * np.clip(v, 0, 1))
  return step((t - onset) / rise) * (1 - step((t - offset) / fall))


def _peaks(rng: np.random.Generator, posed: tuple[int, ...]) -> np.ndarray:
  """Each AU's apex intensity in a trial that poses `posed`."""
  peaks = np.zeros(len(DISFA_PLUS_AUS))
  index = {au: i for i, au in enumerate(DISFA_PLUS_AUS)}
  for au in posed:
    peaks[index[au]] = rng.choice([2, 3, 4, 5], p=[0.15, 0.3, 0.35, 0.2])
  for au in posed:
    for partner, chance in _PARTNERS.get(au, ()):
      if partner not in posed and rng.random() < chance:
        peaks[index[partner]] = max(1, peaks[index[au]] - rng.integers(0, 3))
  for i in np.flatnonzero(peaks == 0):
    draw = rng.random()
    if draw < _SPONTANEOUS:
      peaks[i] = rng.integers(2, 4)
    elif draw < _SPONTANEOUS + _WEAK:
      peaks[i] = 1
  return peaks


def trial_intensities(
  rng: np.random.Generator, posed: tuple[int, ...], num_frames: int
) -> np.ndarray:
  """(num_frames, 12) int intensities 0..5 of one trial."""
  t = (np.arange(num_frames) + 0.5) / num_frames
  peaks = _peaks(rng, posed)
  curves = np.stack([peak * _envelope(rng, t) for peak in peaks], axis=1)
  jitter = rng.normal(0, 0.2, curves.shape) * (curves > 0)
  return np.clip(np.rint(curves + jitter), 0, MAX_INTENSITY).astype(np.int64)


def subject_trials(
  rng: np.random.Generator, num_frames: int
) -> list[tuple[str, np.ndarray]]:
  """One subject's trials: (name, (n, 12) intensities), n summing to
  `num_frames`, in `TRIALS` order."""
  count = min(len(TRIALS), num_frames)
  chosen = np.sort(rng.choice(len(TRIALS), size=count, replace=False))
  sizes = rng.permutation(
    [len(part) for part in np.array_split(np.arange(num_frames), count)]
  )
  return [
    (trial_name(k), trial_intensities(rng, TRIALS[k][1], n))
    for k, n in zip(chosen, sizes)
  ]
