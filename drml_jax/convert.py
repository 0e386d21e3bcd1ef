"""Converts DRML checkpoints between PyTorch (.pth) and orbax, both ways.

  python -m drml_jax.convert torch-to-orbax model.pth ckpt_dir
  python -m drml_jax.convert orbax-to-torch ckpt_dir model.pth [--step N]

PyTorch checkpoints of the public ports load as they are: a bare state_dict
or `{'epoch', 'state_dict', 'optimizer'}`, with or without a `module.` prefix;
the number of AUs, the region grid and variant and the input size are read
off the checkpoint's shapes.
"""

from __future__ import annotations

import os
import sys

from drml_jax import cli
from drml_jax.store import checkpoint, interchange


@cli.command
def main(argv: list[str]) -> int:
  parser = cli.Parser(
    prog="python -m drml_jax.convert", description=__doc__.splitlines()[0]
  )
  parser.add_argument("direction", choices=("torch-to-orbax", "orbax-to-torch"))
  parser.add_argument("src")
  parser.add_argument("dst")
  parser.add_argument(
    "--step", type=int, default=None, help="orbax step (default: latest)"
  )
  args = parser.parse_args(argv)
  if not os.path.exists(args.src):
    raise FileNotFoundError(f"{args.src} does not exist")
  if os.path.exists(args.dst):
    raise FileExistsError(f"{args.dst} already exists; choose a new name")
  if args.direction == "torch-to-orbax":
    model, model_config = interchange.read_torch_checkpoint(args.src)
    checkpoint.save_model(args.dst, model, model_config)
  else:
    model, model_config, _ = checkpoint.restore_model(args.src, step=args.step)
    interchange.write_torch_checkpoint(model, model_config, args.dst)
  print(f"wrote {args.dst} ({model_config})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
