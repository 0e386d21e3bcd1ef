"""DRML from its stored keyword arguments: the one place a network is built.

A checkpoint, a training run and a PyTorch conversion all describe the
network by `model_config`, the JSON keyword arguments of `DRML` (its
`num_aus` and the config's `model` group); `kernels` choose conv forms,
which change speed only and are never stored.
"""

from __future__ import annotations

import json

from flax import nnx

from drml_jax.model.network import DRML


def model_config(config, num_aus: int) -> dict:
  """The JSON keyword arguments of DRML for a run config: `config.model` and
  the dataset's number of AUs."""
  return {"num_aus": num_aus, **json.loads(config.model.to_json())}


def build_model(model_config: dict, seed: int = 0, **kernels) -> DRML:
  """A DRML from its JSON config; `kernels` choose conv forms (speed only)."""
  return DRML(**model_config, **kernels, rngs=nnx.Rngs(seed))
