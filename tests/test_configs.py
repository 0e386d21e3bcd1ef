"""Configs: presets, overrides by name or path, validation, resumable fields."""

import pytest

from drml_jax import configs
from drml_jax.configs import default
from drml_jax.train import __main__ as train


def test_overrides_reach_every_kind_of_field():
  config = configs.from_args(
    [
      "--config",
      "paper",
      "--no-region-layer",
      "--grid",
      "4,4",
      "--learning-rate=0.01",
      "--batch-size",
      "32",
      "--fold",
      "2",
      "--dataset",
      "bp4d",
    ]
  )
  assert not config.model.region_layer and config.model.grid == (4, 4)
  assert config.optim.learning_rate == 0.01 and config.batch_size == 32
  assert (
    config.model.init == "caffe" and config.model.region_bn == "batch_stats"
  )  # preset


@pytest.mark.parametrize(
  "argv, message",
  [
    (["--config", "nope"], "unknown config 'nope'"),
    (["--no-such-field", "1"], "unknown option --no-such-field"),
    (["--batch-size", "many"], "--batch-size 'many': expected int"),
    (["--dataset", "mnist"], "--dataset 'mnist': expected one of"),
    (["--dataset", "bp4d"], "needs --fold 1, 2 or 3"),
    (["--no-learning-rate"], "only boolean fields"),
    # Every value is checked against its meaning before anything is built.
    (["--dropout", "1.5"], "--dropout 1.5: expected in [0, 1)"),
    (
      ["--learning-rate", "nan"],
      "--learning-rate nan: expected a positive number",
    ),
    (
      ["--learning-rate", "-0.1"],
      "--learning-rate -0.1: expected a positive number",
    ),
    (["--momentum", "1.5"], "--momentum 1.5: expected in [0, 1)"),
    (
      ["--weight-decay", "-1"],
      "--weight-decay -1.0: expected zero or a positive number",
    ),
    (["--gamma", "0"], "--gamma 0.0: expected in (0, 1]"),
    (["--input-size", "18"], "--input-size 18: expected at least 66"),
    (["--grid", "0,0"], "--grid 0,0: expected two positive numbers"),
    (
      ["--grid", "3,3"],
      "--grid 3,3: expected sizes that divide the 160x160 conv1 map",
    ),
    (
      ["--schedule", "step", "--step-size", "0"],
      "--step-size 0: expected positive",
    ),
    (["--eval-batch-size", "0"], "--eval-batch-size 0: expected positive"),
    (["--fold", "all"], "--fold all: synthetic has no folds; use it with bp4d"),
    (
      ["--selection", "test", "--val-subjects", "SN001"],
      "--val-subjects SN001: expected empty with --selection test",
    ),
    (["--pos-weight", "rates"], "--pos-weight 'rates': expected one of none"),
  ],
)
def test_bad_command_lines_fail_in_one_line(argv, message, capsys):
  assert train.main(argv) == 2
  err = capsys.readouterr().err
  assert message in err and err.count("\n") == 1


def test_fold_all_is_every_fold_of_a_dataset_with_folds():
  config = configs.from_args(["--dataset", "bp4d", "--fold", "all"])
  assert config.data.fold == configs.FOLD_ALL


def test_fields_resolve_by_name_or_dotted_path():
  config = configs.from_args(
    ["--model.dropout", "0.25", "--conv", "chunked", "--data.fold=0"]
  )
  assert config.model.dropout == 0.25 and config.kernels.conv == "chunked"
  assert configs.resolve(config, "region-conv") == "kernels.region_conv"
  assert configs.resolve(config, "region-layout") == "kernels.region_layout"
  assert configs.resolve(config, "nope") is None


def test_choices_agree_with_the_modules_that_own_them():
  """default.py declares the choices as plain data (the configs sit below
  the network); each set a module also defines is the same there."""
  from data_pipeline import model_inputs, registry  # pylint: disable=import-outside-toplevel
  from drml_jax.model import convs, network, region  # pylint: disable=import-outside-toplevel
  from drml_jax.train import losses, optim  # pylint: disable=import-outside-toplevel

  owners = {
    "data.mode": model_inputs.MODES,
    "data.normalization": model_inputs.NORMALIZATIONS,
    "model.region_bn": region.REGION_BN_VARIANTS,
    "model.init": network.INIT_VARIANTS,
    "kernels.conv": convs.CONV_IMPLS,
    "kernels.region_conv": region.REGION_CONV_IMPLS,
    "kernels.region_layout": network.REGION_LAYOUTS,
    "optim.schedule": optim.SCHEDULES,
    "loss.pos_weight": losses.POS_WEIGHTS,
  }
  for path, owned in owners.items():
    assert default.FIELDS[path][1] == tuple(owned), path
    assert configs.CHOICES[path] == tuple(owned), path
  assert configs.CHOICES["data.dataset"] == registry.names(trainable=True)
  assert "ck_plus" not in configs.CHOICES["data.dataset"]
  assert configs.CHOICES["selection"] == ("val", "test")
  assert set(configs.CHOICES) == set(owners) | {"data.dataset", "selection"}


def test_every_field_has_a_one_line_meaning_and_its_default_among_choices():
  config = default.get_config()
  assert set(default.FIELDS) == set(configs.paths(config))
  for path, (meaning, choices) in default.FIELDS.items():
    assert meaning and "\n" not in meaning, path
    assert choices is None or configs.get(config, path) in choices, path
  for name in default.RESUMABLE:
    assert any(p == name or p.startswith(name + ".") for p in default.FIELDS)


def test_the_input_size_check_agrees_with_the_network():
  from drml_jax.model import network  # pylint: disable=import-outside-toplevel

  for size in range(60, 201):
    assert configs.feature_size(size) == network.feature_shape(size)[0], size
  assert min(s for s in range(1, 201) if configs.feature_size(s) > 0) == 66


# Every field of each preset as it resolved before the base schema moved
# out of seed.py into default.py.
SEED = {
  "data.dataset": "disfa_plus",
  "data.fold": 0,
  "data.dataset_config": "",
  "data.data_dir": "",
  "data.manual_dir": "",
  "data.mode": "resize",
  "data.normalization": "rgb",
  "data.cache": False,
  "data.data_shards": 0,
  "data.val_subjects": "",
  "model.input_size": 170,
  "model.grid": (8, 8),
  "model.region_layer": True,
  # Off in the seed and the paper: their runs stay the same computation.
  "model.intensity": False,
  "model.region_bn": "affine",
  "model.init": "pytorch",
  "model.dropout": 0.5,
  "kernels.conv": "auto",
  "kernels.region_conv": "auto",
  "kernels.region_layout": "auto",
  "loss.pos_weight": "none",
  "loss.intensity_weight": 1.0,
  "optim.learning_rate": 0.001,
  "optim.momentum": 0.9,
  "optim.weight_decay": 0.005,
  "optim.schedule": "constant",
  "optim.step_size": 0,
  "optim.gamma": 0.1,
  "optim.caffe_bias_rule": False,
  "selection": "val",
  "batch_size": 64,
  "eval_batch_size": 64,
  "num_epochs": 20,
  "seed": 0,
  "log_every_steps": 10,
  "checkpoint_every_steps": 500,
  "workdir": "workdirs/seed",
  "export_torch": "",
  "progress": True,
  "hosts.distributed": False,
  "hosts.coordinator_address": "",
  "hosts.num_processes": 0,
  "hosts.process_id": -1,
}
QUICK = {
  **SEED,
  "data.dataset": "synthetic",
  "model.init": "he",
  "model.intensity": True,
  "model.dropout": 0.0,
  "optim.learning_rate": 0.003,
  "optim.schedule": "step",
  "optim.step_size": 186,
  "batch_size": 16,
  "eval_batch_size": 16,
  "num_epochs": 3,
  "checkpoint_every_steps": 0,
  "workdir": "workdirs/quick",
}
PAPER = {
  **SEED,
  "data.mode": "crop",
  "data.normalization": "bgr_mean",
  "model.region_bn": "batch_stats",
  "model.init": "caffe",
  "optim.weight_decay": 0.0005,
  "optim.schedule": "step",
  "optim.step_size": 4000,
  "optim.caffe_bias_rule": True,
  "batch_size": 128,
  "workdir": "workdirs/paper",
}


@pytest.mark.parametrize(
  "name, expected", [("quick", QUICK), ("seed", SEED), ("paper", PAPER)]
)
def test_presets_resolve_to_the_same_values_as_before(name, expected):
  config = configs.load(name)
  assert set(configs.paths(config)) == set(expected)
  for path, value in expected.items():
    actual = configs.get(config, path)
    assert (actual, type(actual)) == (value, type(value)), path
  assert configs.from_args(["--config", name]).to_dict() == config.to_dict()


def test_help_gives_each_field_its_value_meaning_and_choices(capsys):
  assert train.main(["--help", "--config", "paper"]) == 0
  lines = capsys.readouterr().out.splitlines()

  def entry(flag_and_value):
    i = next(i for i, l in enumerate(lines) if l.split()[:2] == flag_and_value)
    return lines[i], lines[i + 1]

  head, meaning = entry(["--init", "caffe"])
  assert head.split()[2:] == ["model.init", "{pytorch,caffe,he}"]
  assert meaning.strip().startswith("parameter init: pytorch (torch's")
  head, meaning = entry(["--conv", "auto"])
  assert head.split()[2:] == ["kernels.conv", "{auto,lax,chunked,fft,banded}"]
  assert "speed only" in meaning
  head, meaning = entry(["--schedule", "step"])
  assert head.split()[2:] == ["optim.schedule", "{constant,step}"]
  assert "step_size" in meaning
  head, meaning = entry(["--learning-rate", "0.001"])
  assert head.split()[2:] == ["optim.learning_rate"]
  assert meaning.strip() == "SGD's learning rate"
  head, choices = entry(["--dataset", "disfa_plus"])
  assert "{synthetic,disfa_plus,bp4d" in choices
  head, _ = entry(["--data-dir", '""'])
  assert head.split()[2] == "data.data_dir"
  fields = lines[lines.index("Fields of --config paper:") + 1 :]
  assert len([l for l in fields if l.startswith("  --")]) == len(SEED)
  assert max(map(len, fields)) <= 88


def test_a_config_missing_a_field_names_it_and_the_base_schema():
  config = default.get_config()
  del config.optim["gamma"]
  with pytest.raises(
    configs.ConfigError, match="no field optim.gamma: .*default"
  ):
    configs.validate(config)


def test_presets_are_named_for_what_they_are():
  quick, seed, paper = (
    configs.load(name) for name in ("quick", "seed", "paper")
  )
  assert configs.split_config_arg([]) == ("quick", [])
  assert quick.data.dataset == "synthetic" and seed.data.dataset == "disfa_plus"
  assert (seed.optim.learning_rate, seed.batch_size, seed.num_epochs) == (
    0.001,
    64,
    20,
  )
  assert paper.model.region_bn == "batch_stats" and paper.data.mode == "crop"
  for config in (quick, seed, paper):
    configs.validate(config)
    assert configs.paths(config) == configs.paths(default.get_config())


def test_resumable_fields_are_declared_by_group_or_path():
  assert configs.resumable("kernels.conv") and configs.resumable(
    "hosts.process_id"
  )
  assert configs.resumable("num_epochs") and configs.resumable(
    "data.manual_dir"
  )
  assert not configs.resumable("optim.learning_rate")
  assert not configs.resumable("data.dataset") and not configs.resumable(
    "batch_size"
  )


@pytest.mark.parametrize(
  "text, message",
  [
    ("def get_config(:\n", "SyntaxError"),
    ("x = 1\n", "AttributeError"),
    ("def get_config():\n  return {}\n", "not an ml_collections.ConfigDict"),
  ],
)
def test_a_broken_config_file_is_one_line(tmp_path, capsys, text, message):
  path = tmp_path / "my_config.py"
  path.write_text(text)
  assert train.main(["--config", str(path)]) == 2
  err = capsys.readouterr().err
  assert str(path) in err and message in err and err.count("\n") == 1
