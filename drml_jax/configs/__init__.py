"""Training configs (ml_collections), their command-line overrides and checks.

  config = configs.from_args(["--config", "seed", "--batch-size", "32"])

`--config` names a preset (quick, the default; seed; paper) or a Python file
whose `get_config()` returns a ConfigDict like `default.get_config()`'s.
Every other `--field value` (or `--field=value`, `--field` / `--no-field`
for booleans) overrides a field, named by its own name (`--dropout`) or its
dotted path (`--model.dropout`). `validate` checks every field against its
meaning before anything is built. The fields, their meanings and choices
are default.py's plain data, so the configs sit below the network: only the
data layer's registry (the dataset names, folds) is imported.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import os
import textwrap

import ml_collections

from data_pipeline import registry
from drml_jax.configs import default

PRESETS = ("quick", "seed", "paper")
FOLD_ALL = -1  # --fold all: every fold of the dataset (folds.train_folds)
DEFAULT_PRESET = "quick"
# The names a field takes, where it takes a fixed set: the trainable datasets
# of data_pipeline.registry, and default.FIELDS' choices.
CHOICES = {
  "data.dataset": registry.names(trainable=True),
  **{p: choices for p, (_, choices) in default.FIELDS.items() if choices},
}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class ConfigError(ValueError):
  """A bad preset, field or value, with a one-line message saying what to do."""


def load(name: str) -> ml_collections.ConfigDict:
  """The preset `name`, or the config of a Python file defining `get_config()`."""
  if name in PRESETS:
    return importlib.import_module(f"drml_jax.configs.{name}").get_config()
  if not (name.endswith(".py") and os.path.isfile(name)):
    raise ConfigError(
      f"unknown config {name!r}: use one of {', '.join(PRESETS)} "
      "or the path of a .py file defining get_config()"
    )
  spec = importlib.util.spec_from_file_location("drml_user_config", name)
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
    config = module.get_config()
  except Exception as error:  # pylint: disable=broad-except
    raise ConfigError(
      f"{name}: {type(error).__name__}: {error}: fix the file; "
      "it must define get_config() returning a ConfigDict"
    ) from None
  if not isinstance(config, ml_collections.ConfigDict):
    raise ConfigError(
      f"{name}: get_config() returned {type(config).__name__}, "
      "not an ml_collections.ConfigDict"
    )
  return config


def paths(config: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
  """Dotted paths of every field, in declaration order."""
  result = []
  for name, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      result += paths(value, f"{prefix}{name}.")
    else:
      result.append(prefix + name)
  return result


def get(config, path: str):
  """The value of the field at dotted `path`."""
  for part in path.split("."):
    config = config[part]
  return config


def _set(config, path: str, value) -> None:
  *groups, name = path.split(".")
  for part in groups:
    config = config[part]
  config[name] = value


def flag(path: str) -> str:
  """The command-line flag of a field's dotted path: model.region_bn -> --region-bn."""
  return "--" + path.rpartition(".")[2].replace("_", "-")


def resolve(config: ml_collections.ConfigDict, name: str) -> str | None:
  """The dotted path a field name (`dropout`) or path (`model.dropout`) means."""
  name = name.replace("-", "_")
  all_paths = paths(config)
  if name in all_paths:
    return name
  matches = [p for p in all_paths if p.rpartition(".")[2] == name]
  return matches[0] if len(matches) == 1 else None


def _parse_value(path: str, current, text: str):
  if path == "data.fold" and text == "all":
    return FOLD_ALL
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
    raise ConfigError(
      f"{flag(path)} {text!r}: expected "
      f"{type(current).__name__} like {_format(current)}"
    ) from None
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
      raise ConfigError(
        f"unexpected argument {arg!r}: fields are set as --field value"
      )
    name, has_value, text = arg[2:].partition("=")
    path = resolve(config, name)
    negated = path is None and not has_value and name.startswith("no-")
    if negated:
      path = resolve(config, name[3:])
    if path is None:
      raise ConfigError(f"unknown option --{name}: --help lists the fields")
    current = get(config, path)
    if isinstance(current, bool) and not has_value:
      _set(config, path, not negated)
      i += 1
      continue
    if negated:
      raise ConfigError(f"--{name}: only boolean fields take --no-")
    if not has_value:
      if i + 1 >= len(args):
        raise ConfigError(f"{flag(path)} needs a value")
      i += 1
      text = args[i]
    _set(config, path, _parse_value(path, current, text))
    i += 1


def feature_size(input_size: int) -> int:
  """The side of the map the conv stack leaves for the fc layers
  (drml_jax.model.network.feature_shape's, checked equal in a test)."""
  size = (input_size - 10) // 2 - 7 - 7  # conv1 11x11, max-pool, two 8x8
  return (size - 6) // 2 + 1 - 4  # 6x6 stride 2, then 5x5


def _checks(config) -> list[tuple[str, bool, str]]:
  """(field, holds, what it must be) for every constraint of a config."""
  m, o = config.model, config.optim
  finite = lambda x: math.isfinite(x)
  grid_ok = len(m.grid) == 2 and min(m.grid) > 0
  return [
    (
      "model.input_size",
      feature_size(m.input_size) > 0,
      "at least 66: smaller inputs leave no map for the fc layers",
    ),
    ("model.grid", grid_ok, "two positive numbers, rows,cols"),
    (
      "model.grid",
      not grid_ok
      or not m.region_layer
      or (m.input_size - 10) % m.grid[0] == 0
      and (m.input_size - 10) % m.grid[1] == 0,
      f"sizes that divide the {m.input_size - 10}x{m.input_size - 10} conv1 map "
      "(8,8 for 170x170 inputs)",
    ),
    ("model.dropout", 0 <= m.dropout < 1, "in [0, 1)"),
    (
      "loss.intensity_weight",
      finite(config.loss.intensity_weight)
      and config.loss.intensity_weight >= 0,
      "zero or a positive number",
    ),
    (
      "optim.learning_rate",
      finite(o.learning_rate) and o.learning_rate > 0,
      "a positive number",
    ),
    ("optim.momentum", 0 <= o.momentum < 1, "in [0, 1)"),
    (
      "optim.weight_decay",
      finite(o.weight_decay) and o.weight_decay >= 0,
      "zero or a positive number",
    ),
    ("optim.gamma", finite(o.gamma) and 0 < o.gamma <= 1, "in (0, 1]"),
    (
      "optim.step_size",
      o.schedule != "step" or o.step_size > 0,
      "positive with --schedule step",
    ),
    ("batch_size", config.batch_size > 0, "positive"),
    ("eval_batch_size", config.eval_batch_size > 0, "positive"),
    ("num_epochs", config.num_epochs > 0, "positive"),
    ("log_every_steps", config.log_every_steps > 0, "positive"),
    (
      "checkpoint_every_steps",
      config.checkpoint_every_steps >= 0,
      "0 or positive",
    ),
    ("data.data_shards", config.data.data_shards >= 0, "0 or positive"),
    (
      "data.val_subjects",
      not config.data.val_subjects or config.selection == "val",
      "empty with --selection test, which holds no subject out",
    ),
  ]


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError naming the first field whose value cannot work."""
  missing = [p for p in default.FIELDS if resolve(config, p) != p]
  if missing:
    raise ConfigError(
      f"the config has no field {missing[0]}: start it from "
      "drml_jax.configs.default.get_config()"
    )
  for path, valid in CHOICES.items():
    if get(config, path) not in valid:
      raise ConfigError(
        f"{flag(path)} {get(config, path)!r}: "
        f"expected one of {', '.join(valid)}"
      )
  for path, holds, expected in _checks(config):
    if not holds:
      raise ConfigError(
        f"{flag(path)} {_format(get(config, path))}: expected {expected}"
      )
  if config.data.fold == FOLD_ALL:
    if not registry.DATASETS[config.data.dataset].folds:
      raise ConfigError(
        f"--fold all: {config.data.dataset} has no folds; use it with "
        + ", ".join(n for n, d in registry.DATASETS.items() if d.folds)
      )
    return
  try:
    registry.check(config.data.dataset, config.data.fold)
  except ValueError as error:
    raise ConfigError(str(error)) from None


def resumable(path: str) -> bool:
  """Whether a resumed run may change the field at `path` (default.RESUMABLE)."""
  return any(path == r or path.startswith(r + ".") for r in default.RESUMABLE)


def split_config_arg(argv: list[str]) -> tuple[str, list[str]]:
  """(the --config value or the default preset, the other arguments)."""
  name, rest, i = DEFAULT_PRESET, [], 0
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


def describe(config: ml_collections.ConfigDict, width: int = 88) -> str:
  """--help's list of fields, in default.py's order: per field
  `--flag value  path  {choices}`, then its meaning; groups apart."""
  own = paths(config)
  ordered = [p for p in default.FIELDS if p in own]
  ordered += [p for p in own if p not in default.FIELDS]
  shown = lambda path: _format(get(config, path)) or '""'  # "" when empty
  rows = [(p, f"{flag(p)} {shown(p)}") for p in ordered]
  flag_width = max(len(text) for _, text in rows) + 2
  path_width = max(len(p) for p, _ in rows) + 2
  lines, group = [], None
  for path, text in rows:
    if lines and path.rpartition(".")[0] != group:
      lines.append("")
    group = path.rpartition(".")[0]
    head = f"  {text:<{flag_width}}{path:<{path_width}}"
    choices = CHOICES.get(path)
    choices = "{" + ",".join(choices) + "}" if choices else ""
    if len(head + choices) <= width:
      lines.append((head + choices).rstrip())
    else:
      lines += [head.rstrip(), " " * 6 + choices]
    meaning = default.FIELDS.get(path, ("(not a field of default.py)", None))[0]
    lines += textwrap.wrap(
      meaning, width, initial_indent=" " * 6, subsequent_indent=" " * 8
    )
  return "\n".join(lines)
