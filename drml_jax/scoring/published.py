"""Published DRML results, as data: per-AU F1 and accuracy in %.

The numbers of docs/protocol.md#published-results (tests/test_published.py
checks that the two agree); `drml_jax.rendering.tables` shows a row beside a
run of the same dataset and AUs.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class PublishedRow:
  """A published table's row: (F1, accuracy) in % per AU and their mean, as
  published (two decimals)."""

  table: str  # the table's heading in docs/protocol.md
  name: str  # the row's name in that table
  scores: dict[int, tuple[float, float]]  # {AU: (F1, accuracy)}
  mean: tuple[float, float]  # (mean F1, mean accuracy) over the AUs


REPRODUCTION_REPORT = "Reproduction report, DISFA+"

# The reproduction report's DISFA+ table (no data augmentation): trained and
# tested on DISFA+ with labels {-1,1} and {0,1}, and the {-1,1} model tested
# on CK+.
ROWS = (
  PublishedRow(
    REPRODUCTION_REPORT,
    "labels {-1,1}",
    {
      1: (68.92, 90.36),
      2: (72.59, 92.72),
      4: (60.95, 92.70),
      5: (64.91, 84.80),
      6: (69.52, 92.71),
      9: (62.61, 96.70),
      12: (85.82, 96.79),
      15: (43.78, 95.61),
      17: (25.99, 94.09),
      20: (22.48, 96.91),
      25: (94.92, 97.88),
      26: (76.50, 94.14),
    },
    mean=(62.42, 93.79),
  ),
  PublishedRow(
    REPRODUCTION_REPORT,
    "labels {0,1}",
    {
      1: (68.93, 90.37),
      2: (72.60, 92.73),
      4: (60.95, 92.71),
      5: (64.91, 84.81),
      6: (69.52, 92.71),
      9: (62.62, 96.70),
      12: (85.83, 96.80),
      15: (43.79, 95.61),
      17: (26.00, 94.09),
      20: (22.49, 96.61),
      25: (94.92, 97.89),
      26: (76.50, 94.14),
    },
    mean=(62.42, 93.79),
  ),
  PublishedRow(
    REPRODUCTION_REPORT,
    "{-1,1}, tested on CK+",
    {
      1: (11.11, 62.23),
      2: (6.02, 73.69),
      4: (50.27, 52.92),
      5: (37.82, 67.28),
      6: (40.88, 45.36),
      9: (14.20, 51.10),
      12: (8.33, 77.74),
      15: (0.00, 81.11),
      17: (19.96, 39.12),
      20: (4.55, 85.83),
      25: (48.80, 42.66),
      26: (15.74, 56.66),
    },
    mean=(21.47, 61.31),
  ),
)

# dataset: the published row shown beside a run on it (results.md)
BESIDE_RUN = {"disfa_plus": ROWS[0]}


def published_row(dataset: str, aus) -> PublishedRow | None:
  """The published row for a run on `dataset` with these AUs (in this
  order); None when none is published for them."""
  row = BESIDE_RUN.get(dataset)
  if row is None or tuple(row.scores) != tuple(int(a) for a in aus):
    return None
  return row
