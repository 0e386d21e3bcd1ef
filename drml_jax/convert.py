"""Converts DRML checkpoints between PyTorch (.pth) and orbax, both ways.

  python -m drml_jax.convert torch-to-orbax model.pth ckpt_dir
  python -m drml_jax.convert orbax-to-torch ckpt_dir model.pth [--step N]

PyTorch checkpoints of the public ports load as they are: a bare state_dict
or `{'epoch', 'state_dict', 'optimizer'}`, with or without a `module.` prefix.
"""

from __future__ import annotations

import argparse
import os
import sys

from drml_jax import checkpoint, interchange
from reference_torch import checkpoint as torch_checkpoint
from reference_torch.model import DRML as TorchDRML


def torch_to_orbax(src: str, dst: str, *, input_size: int = 170) -> dict:
  """Writes the PyTorch checkpoint `src` as an orbax checkpoint `dst`; returns the config."""
  state_dict = torch_checkpoint.load_state_dict(src)
  model_config = dict(torch_checkpoint.infer_model_config(state_dict), input_size=input_size)
  model_config["grid"] = list(model_config["grid"])  # JSON-able
  model_config["num_aus"] = int(model_config["num_aus"])
  model = checkpoint.build_model(model_config)
  interchange.load_torch_state_dict(model, state_dict)
  checkpoint.save_model(dst, model, model_config)
  return model_config


def orbax_to_torch(src: str, dst: str, *, step: int | None = None) -> dict:
  """Writes the orbax checkpoint `src` as a PyTorch checkpoint `dst`; returns the config."""
  model, model_config = checkpoint.restore_model(src, step=step)
  torch_model = TorchDRML(**model_config)
  torch_model.load_state_dict(interchange.to_torch_state_dict(model), strict=True)
  torch_checkpoint.save_checkpoint(torch_model, dst)
  return model_config


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("direction", choices=("torch-to-orbax", "orbax-to-torch"))
  parser.add_argument("src")
  parser.add_argument("dst")
  parser.add_argument("--step", type=int, default=None, help="orbax step (default: latest)")
  parser.add_argument("--input-size", type=int, default=170, help="input side the model was built for")
  args = parser.parse_args(argv)
  if not os.path.exists(args.src):
    print(f"error: {args.src} does not exist", file=sys.stderr)
    return 2
  if os.path.exists(args.dst):
    print(f"error: {args.dst} already exists; choose a new name", file=sys.stderr)
    return 2
  try:
    if args.direction == "torch-to-orbax":
      model_config = torch_to_orbax(args.src, args.dst, input_size=args.input_size)
    else:
      model_config = orbax_to_torch(args.src, args.dst, step=args.step)
  except (ValueError, FileNotFoundError) as error:
    print(f"error: {error}", file=sys.stderr)
    return 2
  print(f"wrote {args.dst} ({model_config})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
