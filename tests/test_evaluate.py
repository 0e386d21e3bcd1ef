"""Evaluation of a work directory, an orbax checkpoint and a PyTorch checkpoint."""

import json
import subprocess
import sys

import pytest
import torch

from drml_jax import evaluate
from reference_torch.model import DRML as TorchDRML
from tests import train_support as support


def _tiny_data(tmp_path_factory) -> list[str]:
  return [
    "--dataset",
    "synthetic",
    "--dataset-config",
    "tiny",
    "--data-dir",
    str(support.base_dir(tmp_path_factory) / "tfds"),
  ]


@pytest.mark.slow
def test_workdir_best_checkpoint_reproduces_its_epoch_table(
  reference_run, tmp_path_factory, tmp_path
):
  output = tmp_path / "eval.json"
  assert (
    evaluate.main(["--workdir", str(reference_run), "--output", str(output)])
    == 0
  )
  scores = json.loads(output.read_text())
  best = max(support.records(reference_run, "eval"), key=lambda r: r["mean_f1"])
  assert scores["counts"] == best["counts"]
  assert scores["loss"] == pytest.approx(best["loss"], rel=1e-5)
  assert (
    sum(map(sum, scores["counts"])) == 8 * 12
  )  # each test image once, every AU


@pytest.mark.slow
def test_orbax_and_pytorch_checkpoints_give_the_final_table(
  reference_run, tmp_path_factory, tmp_path
):
  final = support.records(reference_run, "eval")[-1]
  for checkpoint in (
    reference_run / "checkpoints",
    reference_run / "model.pth",
  ):
    output = tmp_path / f"{checkpoint.name}.json"
    argv = [
      "--checkpoint",
      str(checkpoint),
      "--which",
      "latest",
      "--output",
      str(output),
    ]
    assert evaluate.main(argv + _tiny_data(tmp_path_factory)) == 0
    scores = json.loads(output.read_text())
    assert scores["counts"] == final["counts"], checkpoint
    assert scores["loss"] == pytest.approx(final["loss"], rel=1e-4)


def test_bad_inputs_fail_in_one_line(tmp_path_factory, tmp_path, capsys):
  garbage = tmp_path / "model.pth"
  garbage.write_bytes(b"not a checkpoint")
  # A public port's kind of checkpoint: occurrence only, no intensity head.
  occurrence_only = tmp_path / "port.pth"
  torch.save(
    TorchDRML(12, grid=(2, 2), input_size=66).state_dict(), occurrence_only
  )
  cases = [
    (
      ["--checkpoint", str(occurrence_only), "--intensity"]
      + _tiny_data(tmp_path_factory),
      "has no intensity head",
    ),
    (["--workdir", str(tmp_path / "missing")], "not a training work directory"),
    (["--checkpoint", str(tmp_path / "missing")], "no checkpoint at"),
    (
      ["--checkpoint", str(garbage)] + _tiny_data(tmp_path_factory),
      "is not a readable PyTorch checkpoint",
    ),
    (
      ["--checkpoint", str(tmp_path)] + _tiny_data(tmp_path_factory),
      "is not a readable orbax DRML checkpoint",
    ),
    (["--checkpoint", str(garbage)], "--dataset is required"),
    (
      ["--checkpoint", str(garbage), "--output", str(garbage / "eval.json")]
      + _tiny_data(tmp_path_factory),
      "is not a writable folder",
    ),
    (
      ["--checkpoint", str(tmp_path), "--batch-size", "0"],
      "not a positive integer",
    ),
  ]
  for argv, message in cases:
    assert evaluate.main(argv) == 2, argv
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


@pytest.mark.slow
def test_a_command_prints_only_what_is_about_the_run(tmp_path):
  # No TensorFlow start-up lines, no orbax warnings: one line for one error.
  result = subprocess.run(
    [
      sys.executable,
      "-m",
      "drml_jax.evaluate",
      "--checkpoint",
      str(tmp_path / "missing"),
      "--dataset",
      "synthetic",
    ],
    capture_output=True,
    text=True,
    check=False,
    cwd=support.ROOT,
  )
  assert result.returncode == 2 and result.stdout == ""
  assert result.stderr.startswith("error: no checkpoint at "), result.stderr
  assert result.stderr.count("\n") == 1, result.stderr
