"""Trains DRML; with no arguments, the quick run on the synthetic dataset (CPU).

  python -m drml_jax.train [--config quick|seed|paper|FILE.py] [--FIELD VALUE ...]

Examples:
  python -m drml_jax.train
  python -m drml_jax.train --config seed --manual-dir /data/DISFA+
  python -m drml_jax.train --config seed --no-region-layer --workdir workdirs/ablation
  python -m drml_jax.train --config seed --dataset bp4d --fold 1 --manual-dir /data/bp4d_lists
  python -m drml_jax.train --config seed --dataset bp4d --fold all --manual-dir /data/bp4d_lists

Rerunning a command resumes its work directory. --help lists every field:
its flag, the chosen config's value, its dotted path, its choices and what
it means (declared in drml_jax/configs/default.py).
"""

from __future__ import annotations

import os
import signal
import sys

import jax

from data_pipeline import errors
from drml_jax import cli, configs
from drml_jax.runtime import parallel
from drml_jax.store import workdir
from drml_jax.train import folds, loop


@cli.command
def main(argv: list[str]) -> int:
  if "-h" in argv or "--help" in argv:
    name, _ = configs.split_config_arg(
      [a for a in argv if a not in ("-h", "--help")]
    )
    print(
      __doc__
      + f"\nFields of --config {name}:\n"
      + configs.describe(configs.load(name))
    )
    return 0
  config = configs.from_args(argv)
  parallel.initialize(config.hosts)
  if jax.process_index() != 0:
    cli.setup_logging(verbose=False)
  try:
    if config.data.fold == configs.FOLD_ALL:
      return 1 if folds.train_folds(config)["failed"] else 0
    loop.train(config)
  except KeyboardInterrupt:  # a second Ctrl-C, or one before training began
    cli.fail(loop.interrupted_message(config.workdir))
    # The checkpoints are closed; what is left is threads that were cut off
    # mid-step (tf.data's, XLA's), whose teardown can crash the interpreter
    # (exit 139 instead of 130): leave without it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(128 + signal.SIGINT)
  except loop.Interrupted as stopped:
    return cli.fail(
      f"stopped by {signal.Signals(stopped.signum).name} at step "
      f"{stopped.step}; the checkpoint is saved in {config.workdir}: rerun "
      "the same command to resume",
      128 + stopped.signum,
    )
  except (loop.TrainingError, workdir.LockedError) as error:
    return cli.fail(errors.first_line(error), 1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
