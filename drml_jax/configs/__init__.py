"""Training presets (ml_collections) and their command-line overrides.

  config = configs.from_args(["--config", "seed", "--batch-size", "32"])

`--config` names a preset (default, seed, paper) or a Python file whose
`get_config()` returns a ConfigDict; every other `--field value` (or
`--field=value`, `--field` / `--no-field` for booleans) overrides a field.
"""

from __future__ import annotations

import importlib
import importlib.util
import os

import ml_collections

PRESETS = ("default", "seed", "paper")
DATASETS = ("synthetic", "disfa_plus", "bp4d", "disfa")
FOLDED_DATASETS = ("bp4d", "disfa")
CHOICES = {
    "dataset": DATASETS,
    "mode": ("resize", "crop"),
    "normalization": ("rgb", "bgr_mean"),
    "region_bn": ("affine", "batch_stats"),
    "region_conv": ("auto", "lax", "matmul"),
    "conv": ("auto", "lax", "fft"),
    "init": ("pytorch", "caffe", "he"),
    "schedule": ("constant", "step"),
}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class ConfigError(ValueError):
  """A bad preset, field or value, with a one-line message saying what to do."""


def load(name: str) -> ml_collections.ConfigDict:
  """The preset `name`, or the config of a Python file defining `get_config()`."""
  if name in PRESETS:
    return importlib.import_module(f"drml_jax.configs.{name}").get_config()
  if name.endswith(".py") and os.path.isfile(name):
    spec = importlib.util.spec_from_file_location("drml_user_config", name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()
  raise ConfigError(f"unknown config {name!r}: use one of {', '.join(PRESETS)} "
                    "or the path of a .py file defining get_config()")


def _parse_value(name: str, current, text: str):
  try:
    if isinstance(current, bool):
      if text.lower() in _TRUE + _FALSE:
        return text.lower() in _TRUE
      raise ValueError
    if isinstance(current, int):
      return int(text)
    if isinstance(current, float):
      return float(text)
    if isinstance(current, tuple):
      return tuple(type(current[0])(part) for part in text.split(","))
  except ValueError:
    raise ConfigError(f"--{name.replace('_', '-')} {text!r}: expected "
                      f"{type(current).__name__} like {_format(current)}") from None
  return text


def _format(value) -> str:
  if isinstance(value, tuple):
    return ",".join(map(str, value))
  return str(value)


def apply_overrides(config: ml_collections.ConfigDict, args: list[str]) -> None:
  """Sets the fields named by `--field value` pairs in `args`."""
  i = 0
  while i < len(args):
    arg = args[i]
    if not arg.startswith("--"):
      raise ConfigError(f"unexpected argument {arg!r}: fields are set as --field value")
    name, has_value, text = arg[2:].partition("=")
    name = name.replace("-", "_")
    negated = not has_value and name.startswith("no_") and name not in config
    if negated:
      name = name[3:]
    if name not in config:
      raise ConfigError(f"unknown option --{arg[2:].partition('=')[0]}: "
                        "--help lists the fields")
    current = config[name]
    if isinstance(current, bool) and not has_value:
      config[name] = not negated
      i += 1
      continue
    if negated:
      raise ConfigError(f"--no-{name.replace('_', '-')}: only boolean fields take --no-")
    if not has_value:
      if i + 1 >= len(args):
        raise ConfigError(f"--{name.replace('_', '-')} needs a value")
      i += 1
      text = args[i]
    config[name] = _parse_value(name, current, text)
    i += 1


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError naming the first field whose value cannot work."""
  for name, valid in CHOICES.items():
    if config[name] not in valid:
      raise ConfigError(f"--{name.replace('_', '-')} {config[name]!r}: "
                        f"expected one of {', '.join(valid)}")
  if config.dataset in FOLDED_DATASETS and config.fold not in (1, 2, 3):
    raise ConfigError(f"--dataset {config.dataset} needs --fold 1, 2 or 3 "
                      f"(got {config.fold})")
  for name in ("batch_size", "eval_batch_size", "num_epochs", "input_size",
               "log_every_steps"):
    if config[name] <= 0:
      raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {config[name]}")
  if config.schedule == "step" and config.step_size <= 0:
    raise ConfigError("--schedule step needs a positive --step-size")


def split_config_arg(argv: list[str]) -> tuple[str, list[str]]:
  """(the --config value or "default", the other arguments)."""
  name, rest, i = "default", [], 0
  while i < len(argv):
    if argv[i] == "--config":
      if i + 1 >= len(argv):
        raise ConfigError("--config needs a preset name or a .py file")
      name, i = argv[i + 1], i + 2
    elif argv[i].startswith("--config="):
      name, i = argv[i].partition("=")[2], i + 1
    else:
      rest.append(argv[i])
      i += 1
  return name, rest


def from_args(argv: list[str]) -> ml_collections.ConfigDict:
  """The config that `--config NAME` and the field overrides in `argv` describe."""
  name, overrides = split_config_arg(argv)
  config = load(name)
  apply_overrides(config, overrides)
  validate(config)
  return config


def describe(config: ml_collections.ConfigDict) -> str:
  """One `--field value` line per field, for --help."""
  width = max(len(name) for name in config) + 3
  return "\n".join(f"  --{name.replace('_', '-'):<{width}}{_format(value)}"
                   for name, value in config.items())
