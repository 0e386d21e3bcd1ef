"""Converts DRML checkpoints between PyTorch (.pth) and orbax, both ways.

  python -m drml_jax.convert torch-to-orbax model.pth ckpt_dir
  python -m drml_jax.convert orbax-to-torch ckpt_dir model.pth [--step N]

PyTorch checkpoints of the public ports load as they are: a bare state_dict
or `{'epoch', 'state_dict', 'optimizer'}`, with or without a `module.` prefix;
the number of AUs, the region grid and variant and the input size are read
off the checkpoint's shapes. An orbax checkpoint stores its AUs and
preprocessing: a PyTorch file's are the protocol's (resize, RGB / 255), its
AUs DISFA+'s 12 or DISFA's 8 unless `--aus` names them.
"""

from __future__ import annotations

import os
import sys

from drml_jax import cli
from drml_jax.store import checkpoint, interchange, saved_run


@cli.command
def main(argv: list[str]) -> int:
  parser = cli.parser("python -m drml_jax.convert", __doc__)
  parser.add_argument("direction", choices=("torch-to-orbax", "orbax-to-torch"))
  parser.add_argument("src")
  parser.add_argument("dst")
  parser.add_argument(
    "--step", type=int, default=None, help="orbax step (default: latest)"
  )
  parser.add_argument(
    "--aus",
    type=cli.au_list,
    default=None,
    help="the PyTorch checkpoint's AUs, e.g. 1,2,4 (default: DISFA+'s 12 "
    "or DISFA's 8)",
  )
  args = parser.parse_args(argv)
  if not os.path.exists(args.src):
    raise FileNotFoundError(f"{args.src} does not exist")
  if os.path.exists(args.dst):
    raise FileExistsError(f"{args.dst} already exists; choose a new name")
  if (args.direction == "torch-to-orbax") != os.path.isfile(args.src):
    wanted = (
      "a PyTorch .pth file"
      if args.direction == "torch-to-orbax"
      else "an orbax checkpoint directory"
    )
    raise ValueError(f"{args.direction} reads {wanted}; {args.src} is not one")
  trained = saved_run.load(
    checkpoint=args.src, which="latest", step=args.step, aus=args.aus
  )
  model_config = trained.model_config
  if args.direction == "torch-to-orbax":
    checkpoint.save_model(args.dst, trained.model, model_config, trained.inputs)
  else:
    interchange.write_torch_checkpoint(trained.model, model_config, args.dst)
  print(f"wrote {args.dst} ({model_config})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
