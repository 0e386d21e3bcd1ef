"""A prediction command's model and reading flags, and the predictor they name.

settings = Settings.of(args)     # predict's or the corpus's parsed flags
predictor = load(settings)       # predict's, each corpus worker's
"""

from __future__ import annotations

import argparse
import dataclasses

from drml_jax.predict.predictor import (
  DEFAULT_BATCH_SIZE,
  BatchedPredictor,
  require_intensity,
)
from drml_jax.predict.saved_predictor import load_predictor


@dataclasses.dataclass(frozen=True)
class Settings:
  """The model (--workdir, --checkpoint or --onnx; --aus, --intensity) and
  how its inputs are read (--batch-size, --faces, --every)."""

  workdir: str | None = None
  checkpoint: str | None = None
  onnx: str | None = None
  aus: tuple[int, ...] | None = None
  intensity: bool = False
  batch_size: int = DEFAULT_BATCH_SIZE
  detect: bool = True
  every: int = 1

  @classmethod
  def of(cls, args: argparse.Namespace) -> Settings:
    return cls(
      workdir=args.workdir,
      checkpoint=args.checkpoint,
      onnx=args.onnx,
      aus=args.aus,
      intensity=args.intensity,
      batch_size=args.batch_size,
      detect=args.faces == "detect",
      every=args.every,
    )


def load(settings: Settings, explains: bool = False) -> BatchedPredictor:
  """The predictor `settings` name (`load_predictor`'s, from the cache of
  this machine, or onnxruntime's for --onnx), refused in one line without
  the intensity head when --intensity asks for it. With `explains`, it
  computes evidence maps too (not for --onnx)."""
  if settings.onnx:
    # Imported here: onnxruntime's predictor, for --onnx only.
    from drml_jax.predict import onnx_predictor  # pylint: disable=import-outside-toplevel

    predictor = onnx_predictor.load(settings.onnx, settings.batch_size)
  else:
    predictor = load_predictor(
      workdir=settings.workdir,
      checkpoint=settings.checkpoint,
      aus=settings.aus,
      batch_size=settings.batch_size,
      explains=explains,
    )
  if settings.intensity:
    require_intensity(predictor.has_intensity, predictor.description)
  return predictor
