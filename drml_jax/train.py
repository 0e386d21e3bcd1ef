"""Trains DRML; with no arguments, the quick run on the synthetic dataset (CPU).

  python -m drml_jax.train [--config default|seed|paper|FILE.py] [--FIELD VALUE ...]

Examples:
  python -m drml_jax.train
  python -m drml_jax.train --config seed --manual-dir /data/DISFA+
  python -m drml_jax.train --config seed --no-region-layer --workdir workdirs/ablation
  python -m drml_jax.train --config seed --dataset bp4d --fold 1 --manual-dir /data/bp4d_lists

Rerunning a command resumes its work directory. --help lists the fields with
the chosen config's values; drml_jax/configs/base.py says what each means.
"""

from __future__ import annotations

import signal
import sys

from drml_jax import configs, parallel, trainer
from data_pipeline.sources.base import DataError


def main(argv: list[str] | None = None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  try:
    if "-h" in argv or "--help" in argv:
      name, _ = configs.split_config_arg([a for a in argv if a not in ("-h", "--help")])
      print(__doc__ + f"\nFields of --config {name}:\n" + configs.describe(configs.load(name)))
      return 0
    config = configs.from_args(argv)
  except configs.ConfigError as error:
    print(f"error: {error}", file=sys.stderr)
    return 2
  parallel.initialize(config)
  try:
    trainer.train(config)
  except KeyboardInterrupt:
    print("interrupted before the first training step: nothing to save", file=sys.stderr)
    return 128 + signal.SIGINT
  except trainer.Interrupted as stopped:
    print(f"stopped by {signal.Signals(stopped.signum).name} at step {stopped.step}; the "
          f"checkpoint is saved in {config.workdir}: rerun the same command to resume",
          file=sys.stderr)
    return 128 + stopped.signum
  except (trainer.TrainingError, configs.ConfigError, DataError, FileNotFoundError,
          ValueError) as error:
    print(f"error: {str(error).splitlines()[0]}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
