"""Configs: presets, overrides by name or path, validation, resumable fields."""

import pytest

from drml_jax import configs
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


def test_choices_come_from_the_modules_that_own_them():
  from data_pipeline import registry  # pylint: disable=import-outside-toplevel
  from drml_jax.model.convs import CONV_IMPLS  # pylint: disable=import-outside-toplevel
  from drml_jax.model.network import REGION_LAYOUTS  # pylint: disable=import-outside-toplevel

  assert configs.CHOICES["kernels.conv"] is CONV_IMPLS
  assert configs.CHOICES["kernels.region_layout"] is REGION_LAYOUTS
  assert configs.CHOICES["data.dataset"] == registry.names(trainable=True)
  assert "ck_plus" not in configs.CHOICES["data.dataset"]


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
    assert configs.paths(config) == configs.paths(seed)


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
