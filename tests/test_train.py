"""Training: config overrides, outputs, resume after SIGINT and SIGKILL, NaN stop."""

import json
import os
import signal

import numpy as np
import pytest

from drml_jax import configs, report, train, trainer
from drml_jax.checkpoint import TrainCheckpoints
from reference_torch.checkpoint import infer_model_config, load_state_dict
from reference_torch.model import DRML as TorchDRML
import train_support as support


def test_overrides_reach_every_kind_of_field():
  config = configs.from_args(["--config", "paper", "--no-region-layer", "--grid", "4,4",
                              "--learning-rate=0.01", "--batch-size", "32", "--fold", "2",
                              "--dataset", "bp4d"])
  assert not config.region_layer and config.grid == (4, 4)
  assert config.learning_rate == 0.01 and config.batch_size == 32
  assert config.init == "caffe" and config.region_bn == "batch_stats"  # from the preset


@pytest.mark.parametrize("argv, message", [
    (["--config", "nope"], "unknown config 'nope'"),
    (["--no-such-field", "1"], "unknown option --no-such-field"),
    (["--batch-size", "many"], "--batch-size 'many': expected int"),
    (["--dataset", "mnist"], "--dataset 'mnist': expected one of"),
    (["--dataset", "bp4d"], "needs --fold 1, 2 or 3"),
    (["--no-learning-rate"], "only boolean fields"),
])
def test_bad_command_lines_fail_in_one_line(argv, message, capsys):
  assert train.main(argv) == 2
  err = capsys.readouterr().err
  assert message in err and err.count("\n") == 1


def test_collapse_and_constant_predictor():
  counts = np.array([[0, 0, 6, 2], [0, 0, 4, 4]])  # everything predicted absent
  assert "absent" in report.collapse(counts)
  assert report.collapse(counts[:, [2, 3, 0, 1]]) .endswith("present for the whole split")
  assert report.collapse([[1, 0, 6, 1], [0, 0, 4, 4]]) is None
  np.testing.assert_array_equal(report.constant_counts(counts), [[2, 6, 0, 0], [4, 4, 0, 0]])
  scores, text = report.evaluation_report(counts, (1, 2))
  assert scores["collapse"] and "COLLAPSED" in text
  assert scores["constant_mean_f1"] == pytest.approx(np.mean([2 * 2 / 10, 2 * 4 / 12]))


def test_reference_run_writes_every_output(tmp_path_factory):
  workdir = support.reference(tmp_path_factory)
  for name in ("config.json", "results.md", "loss.png", "f1_per_au.png", "metrics.jsonl"):
    assert (workdir / name).stat().st_size > 0, name
  assert list((workdir / "tensorboard").iterdir())
  evals = support.records(workdir, "eval")
  assert [r["epoch"] for r in evals] == [1, 2, 3]
  assert sorted(support.train_losses(workdir)) == list(range(1, 7))
  results = (workdir / "results.md").read_text()
  assert "| model | AU1 | AU2 |" in results and "constant: all AUs present" in results
  assert json.loads((workdir / "config.json").read_text())["input_size"] == 66
  # The latest step and the best evaluated one are kept, nothing else.
  best = max(evals, key=lambda r: r["mean_f1"])["step"]
  assert set(support.checkpoint_steps(workdir)) == {best, 6}
  checkpoints = TrainCheckpoints(workdir / "checkpoints", read_only=True)
  assert checkpoints.best_step() == best
  checkpoints.close()
  # --export-torch wrote what the reference model (at the run's input size) loads strictly.
  state_dict = load_state_dict(workdir / "model.pth")
  torch_model = TorchDRML(**infer_model_config(state_dict), input_size=66)
  torch_model.load_state_dict(state_dict, strict=True)
  assert torch_model.classifier[6].out_features == 12


def test_sigint_then_sigkill_then_resume_matches_uninterrupted(tmp_path_factory, tmp_path,
                                                              capsys):
  reference = support.reference(tmp_path_factory)
  base = support.base_dir(tmp_path_factory)
  workdir = tmp_path / "run"
  args = support.tiny_args(workdir, base / "tfds")
  environment = support.env(base)

  process = support.start(args, environment)
  support.wait_for_checkpoint(process, workdir, after=0)
  process.send_signal(signal.SIGINT)
  out, err = process.communicate(timeout=support.TIMEOUT_S)
  assert process.returncode == 128 + signal.SIGINT, out + err
  assert "stopped by SIGINT at step" in err
  stopped = support.checkpoint_steps(workdir)[-1]
  assert f"at step {stopped};" in err  # saved the step it stopped at
  assert stopped < 6

  process = support.start(args, environment)
  support.wait_for_checkpoint(process, workdir, after=stopped)
  process.kill()
  process.communicate(timeout=support.TIMEOUT_S)

  assert process.returncode == -signal.SIGKILL
  assert train.main(args) == 0  # resumes in this process
  assert "resuming" in "".join(capsys.readouterr())
  assert support.train_losses(workdir) == support.train_losses(reference)
  expected = support.final_params(reference)
  actual = support.final_params(workdir)
  assert expected.keys() == actual.keys()
  for name in expected:
    np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)


def test_sigterm_is_recorded_not_fatal_and_the_handler_restored():
  previous = signal.getsignal(signal.SIGTERM)
  with trainer._catch_signals() as signals:  # pylint: disable=protected-access
    os.kill(os.getpid(), signal.SIGTERM)
    assert signals.received == signal.SIGTERM
  assert signal.getsignal(signal.SIGTERM) is previous


def test_resume_refuses_a_different_computation(tmp_path_factory, capsys):
  workdir = support.reference(tmp_path_factory)
  args = support.tiny_args(workdir, support.base_dir(tmp_path_factory) / "tfds")
  assert train.main(args + ["--learning-rate", "0.5"]) == 1
  err = capsys.readouterr().err
  assert "--learning-rate 0.0001, not 0.5" in err and "new --workdir" in err


def test_non_finite_loss_stops_and_keeps_the_last_checkpoint(tmp_path_factory, tmp_path, capsys):
  base = support.base_dir(tmp_path_factory)
  support.reference(tmp_path_factory)  # builds the data
  args = support.tiny_args(tmp_path / "run", base / "tfds", "--learning-rate", "1e6")
  assert train.main(args) == 1
  err = capsys.readouterr().err
  assert "the loss is" in err and "stopped without saving" in err
  failed_step = int(err.split(" at step ")[1].split()[0])
  steps = support.checkpoint_steps(tmp_path / "run")
  assert steps and steps[-1] == failed_step - 1
