"""Training: config overrides, outputs, resume after SIGINT and SIGKILL, NaN stop."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from drml_jax.rendering.tables import seed_differences
from drml_jax.runtime import signals
from drml_jax.store import checkpoint, workdir
from drml_jax.train import __main__ as train
from drml_jax.train import loop
from drml_jax.train.run import Run
from reference_torch.checkpoint import infer_model_config, load_state_dict
from reference_torch.model import DRML as TorchDRML
from tests import train_support as support


@pytest.mark.slow
def test_reference_run_writes_every_output(reference_run, tmp_path_factory):
  for name in (
    "config.json",
    "results.md",
    "loss.png",
    "f1_per_au.png",
    "metrics.jsonl",
  ):
    assert (reference_run / name).stat().st_size > 0, name
  assert list((reference_run / "tensorboard").iterdir())
  evals = support.records(reference_run, "eval")
  assert [r["epoch"] for r in evals] == [1, 2, 3]
  assert sorted(support.train_losses(reference_run)) == list(range(1, 7))
  results = (reference_run / "results.md").read_text()
  assert (
    "| model | AU1 | AU2 |" in results
    and "constant: all AUs present" in results
  )
  # The intensity head (on in these runs) is scored every epoch, per AU.
  for record in evals:
    assert set(record["icc"]) == set(record["f1"])
    assert 0 <= record["mean_mae"] <= 5
  assert "DRML ICC(3,1)" in results and "DRML MAE" in results
  assert (
    json.loads((reference_run / "config.json").read_text())["model"][
      "input_size"
    ]
    == 66
  )
  # The latest step and the best evaluated one are kept, nothing else.
  best = max(evals, key=lambda r: r["mean_f1"])["step"]
  assert set(support.checkpoint_steps(reference_run)) == {best, 6}
  assert (
    checkpoint.restore(reference_run / "checkpoints", best=True).step == best
  )
  # --export-torch wrote what the reference model (at the run's input size) loads strictly.
  state_dict = load_state_dict(reference_run / "model.pth")
  assert infer_model_config(state_dict)["input_size"] == 66
  torch_model = TorchDRML(**infer_model_config(state_dict))
  torch_model.load_state_dict(state_dict, strict=True)
  assert torch_model.classifier[6].out_features == 12
  assert torch_model.intensity.out_features == 12 * 5  # 5 thresholds per AU


@pytest.mark.slow
def test_sigint_then_sigkill_then_resume_matches_uninterrupted(
  reference_run, tmp_path_factory, tmp_path, capsys
):
  reference = reference_run
  base = support.base_dir(tmp_path_factory)
  workdir = tmp_path / "run"
  args = support.tiny_args(workdir, base / "tfds")
  environment = support.env()

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
  with signals.caught() as received:
    os.kill(os.getpid(), signal.SIGTERM)
    assert received.signum == signal.SIGTERM
  assert signal.getsignal(signal.SIGTERM) is previous


@pytest.mark.slow
def test_resume_refuses_a_different_computation(
  reference_run, tmp_path_factory, tmp_path, capsys
):
  # The checkpoint carries the config it was trained with: config.json may go.
  run = tmp_path / "run"
  shutil.copytree(reference_run, run)
  (run / "config.json").unlink()
  args = support.tiny_args(run, support.base_dir(tmp_path_factory) / "tfds")
  assert train.main(args + ["--learning-rate", "0.5"]) == 1
  err = capsys.readouterr().err
  assert "--learning-rate 0.0001, not 0.5" in err and "new --workdir" in err
  assert not (run / "config.json").exists()


@pytest.mark.slow
def test_non_finite_loss_stops_and_names_the_last_usable_checkpoint(
  reference_run, tmp_path_factory, tmp_path, capsys
):
  base = support.base_dir(tmp_path_factory)
  args = support.tiny_args(
    tmp_path / "run", base / "tfds", "--learning-rate", "1e6"
  )
  assert train.main(args) == 1
  err = capsys.readouterr().err
  assert "stopped without saving" in err and err.count("\n") == 1
  failed_step = int(re.search(r" at step (\d+)", err).group(1))
  # A loss at step s is computed with the parameters saved as step s - 1.
  newest_usable = failed_step - (2 if "the loss is" in err else 1)
  saved = support.checkpoint_steps(tmp_path / "run")
  usable = [step for step in saved if step <= newest_usable]
  named = re.search(r"step (\d+) in \S+ is the last usable checkpoint", err)
  if usable:
    assert named and int(named.group(1)) == usable[-1], err
  else:  # lr 1e6 diverges at step 2: nothing saved is usable, and it says so
    assert not named and "no usable checkpoint was written" in err, err


def test_a_second_run_into_the_same_workdir_is_refused(tmp_path, capsys):
  with workdir.lock(str(tmp_path / "run")):
    assert train.main(["--workdir", str(tmp_path / "run")]) == 1
  err = capsys.readouterr().err
  assert (
    f"is being written by process {os.getpid()} on " in err
    and err.count("\n") == 1
  )


@pytest.mark.slow
def test_a_damaged_checkpoint_is_named_on_resume(
  reference_run, tmp_path_factory, tmp_path, capsys
):
  run = tmp_path / "run"
  shutil.copytree(reference_run, run)
  latest = support.checkpoint_steps(run)[-1]
  for item in (run / "checkpoints" / str(latest) / "state").rglob("*"):
    if item.is_file():
      item.write_bytes(b"damaged")
  args = support.tiny_args(run, support.base_dir(tmp_path_factory) / "tfds")
  assert train.main(args) == 1
  err = capsys.readouterr().err
  assert (
    f"step {latest} in " in err
    and "cannot be read" in err
    and err.count("\n") == 1
  )


def test_an_interruption_names_the_newest_complete_checkpoint(tmp_path):
  assert "no checkpoint of" in loop.interrupted_message(str(tmp_path))
  for name in ("2", "5", "7.orbax-checkpoint-tmp-1"):  # 7 was being written
    (tmp_path / "checkpoints" / name).mkdir(parents=True)
  message = loop.interrupted_message(str(tmp_path))
  assert message.startswith(
    "interrupted; step 5, the newest complete checkpoint"
  )


@pytest.fixture
def small_disk(tmp_path):
  """A 30 MB tmpfs: too small for the tiny run's first checkpoint (~70 MB)."""
  mount = tmp_path / "disk"
  mount.mkdir()
  result = subprocess.run(
    ["mount", "-t", "tmpfs", "-o", "size=30M", "tmpfs", str(mount)],
    capture_output=True,
    check=False,
  )
  if result.returncode:
    pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
  yield mount
  subprocess.run(
    ["umount", "--lazy", str(mount)], check=False
  )  # files may still be open


@pytest.mark.slow
def test_a_full_disk_is_one_line_naming_what_is_kept(
  reference_run, tmp_path_factory, small_disk, capsys
):
  args = support.tiny_args(
    small_disk / "run", support.base_dir(tmp_path_factory) / "tfds"
  )
  assert train.main(args) == 1
  err = capsys.readouterr().err
  assert err.count("\n") == 1, err
  assert "failed: no space left on the device" in err
  assert "no checkpoint of" in err and "was completed" in err


@pytest.mark.slow
def test_a_save_is_written_when_it_returns(
  tmp_path_factory, monkeypatch, caplog
):
  """No write is left running beside the next train steps: its buffers
  would grow the heap they keep (benchmarks/README.md#log). The next save
  does not report that write's time as a wait for it."""
  from drml_jax import configs  # pylint: disable=import-outside-toplevel
  from orbax.checkpoint import checkpoint_manager  # pylint: disable=import-outside-toplevel

  # Orbax warns above 1 s; this tiny run's writes take less.
  monkeypatch.setattr(
    checkpoint_manager, "_WAIT_FOR_PREV_SAVE_WARNING_THRESHOLD_SECS", -1.0
  )
  base = support.base_dir(tmp_path_factory)
  base.mkdir(exist_ok=True)
  config = configs.from_args(support.tiny_args(base / "save", base / "tfds"))
  run = Run(config)
  try:
    run.save()
    assert not run.checkpoints.manager.is_saving_in_progress()
    assert run.checkpoints.all_steps() == [0]
    assert (base / "save" / workdir.CHECKPOINT_DIR / "0").is_dir()
    run.step += 1
    run.state = run.state.replace(step=run.state.step + 1)
    with caplog.at_level("WARNING"):
      run.save()
    assert run.checkpoints.all_steps() == [1]
    assert not [r for r in caplog.records if "previous save" in r.getMessage()]
  finally:
    run.checkpoints.close()


def test_results_name_how_a_run_differs_from_the_published_protocol():
  from drml_jax import configs  # pylint: disable=import-outside-toplevel

  seed = configs.load("seed")
  assert seed_differences(seed) == ["--selection"]
  seed.selection = "test"
  assert seed_differences(seed) == []
  quick = seed_differences(configs.load("quick"))
  assert "--learning-rate" in quick and "--num-epochs" in quick


def _three_fold_tree(root):
  """BP4D in the list-file layout: four subjects of two faces; fold k tests
  subject k and trains on the three others."""
  from PIL import Image  # pylint: disable=import-outside-toplevel

  rng = np.random.default_rng(0)
  subjects = ("F001", "F002", "M003", "M004")
  faces = {s: [f"{s}/{i}.png" for i in range(2)] for s in subjects}
  labels = {
    face: " ".join(map(str, rng.integers(0, 2, 12)))
    for names in faces.values()
    for face in names
  }
  for face in labels:
    (root / "img" / face).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (200, 200, 3), np.uint8)).save(
      root / "img" / face
    )
  (root / "list").mkdir()
  for fold in (1, 2, 3):
    test = faces[subjects[fold - 1]]
    train = [f for s in subjects if s != subjects[fold - 1] for f in faces[s]]
    for split, names in (("train", train), ("test", test)):
      (root / "list" / f"BP4D_{split}_img_path_fold{fold}.txt").write_text(
        "".join(f"{n}\n" for n in names)
      )
      (root / "list" / f"BP4D_{split}_label_fold{fold}.txt").write_text(
        "".join(f"{labels[n]}\n" for n in names)
      )
  return root


@pytest.mark.slow
def test_fold_all_reports_each_fold_their_mean_and_resumes_fold_by_fold(
  tmp_path_factory, tmp_path
):
  base = support.base_dir(tmp_path_factory)
  base.mkdir(exist_ok=True)
  tree = _three_fold_tree(tmp_path / "bp4d")
  work = tmp_path / "folds"
  args = [
    "--dataset",
    "bp4d",
    "--fold",
    "all",
    "--manual-dir",
    str(tree),
    "--data-dir",
    str(tmp_path / "tfds"),
    "--input-size",
    "66",
    "--grid",
    "2,2",
    "--init",
    "he",
    "--batch-size",
    "2",
    "--eval-batch-size",
    "2",
    "--num-epochs",
    "1",
    "--checkpoint-every-steps",
    "0",
    "--no-progress",
    "--workdir",
    str(work),
  ]
  support.run(args, support.env())
  text = (work / "folds.md").read_text()
  reported = {}
  for fold in (1, 2, 3):
    assert f"## Fold {fold}: validation-best model" in text
    (best,) = [
      r
      for r in support.records(work / f"fold{fold}", "test")
      if r["checkpoint"] == "best"
    ]
    reported[fold] = best
    # The last training subject is held out to choose the reported epoch.
    results = (work / f"fold{fold}" / "results.md").read_text()
    assert "held-out training subjects M004;" in results
  f1_row = next(line for line in text.splitlines() if line.startswith("| F1 |"))
  means = [r["mean_f1"] for r in reported.values()]
  assert f1_row.endswith(
    f"| {100 * np.mean(means):.2f} ± {100 * np.std(means, ddof=1):.2f} |"
  )
  # Thresholds tuned on the validation split travel with the checkpoint.
  from drml_jax.predict.saved_predictor import load_predictor  # pylint: disable=import-outside-toplevel

  predictor = load_predictor(workdir=str(work / "fold1"))
  assert predictor.thresholds.tolist() == pytest.approx(
    list(reported[1]["tuned"]["thresholds"].values())
  )

  # An interruption in fold 2: its results are gone, fold 3 never ran.
  fold1 = sorted(
    (p, p.stat().st_mtime_ns)
    for p in (work / "fold1").rglob("*")
    if p.is_file()
  )
  (work / "fold2" / "results.md").unlink()
  shutil.rmtree(work / "fold3")
  again = support.run(args, support.env())
  assert "fold 1: finished" in again.stderr + again.stdout
  assert fold1 == sorted(
    (p, p.stat().st_mtime_ns)
    for p in (work / "fold1").rglob("*")
    if p.is_file()
  )
  assert (work / "fold2" / "results.md").exists()
  assert (work / "fold3" / "results.md").exists()
  assert (work / "folds.md").read_text().count("## Fold") == 3


def test_a_workdir_that_is_a_file_is_one_line(tmp_path, capsys):
  (tmp_path / "run").write_text("not a folder")
  assert train.main(["--workdir", str(tmp_path / "run")]) == 2
  err = capsys.readouterr().err
  assert "is a file, not a folder" in err and err.count("\n") == 1


METRICS_LOG_IN_A_FRESH_PROCESS = """
import json, sys
from drml_jax.store import workdir
log = workdir.MetricsLog(sys.argv[1])
log.write({"kind": "train", "step": 10, "loss": 0.5, "images_per_s": 12.0})
log.write({"kind": "eval", "step": 20, "mean_f1": 61.25, "split": "val"})
log.close()
print(json.dumps("torch" in sys.modules))
"""


@pytest.mark.slow
def test_metrics_log_writes_tensorboard_scalars_without_torch(tmp_path):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  done = subprocess.run(
    [sys.executable, "-c", METRICS_LOG_IN_A_FRESH_PROCESS, str(tmp_path)],
    capture_output=True,
    text=True,
    check=True,
  )
  # torch costs a run ~190 MB of memory; only PyTorch interchange needs it.
  assert json.loads(done.stdout.splitlines()[-1]) is False
  scalars = {}
  for path in (tmp_path / workdir.TENSORBOARD_DIR).iterdir():
    for raw in tf.data.TFRecordDataset(str(path)):
      event = tf.compat.v1.Event.FromString(raw.numpy())
      for value in event.summary.value:
        scalars[value.tag, event.step] = float(tf.make_ndarray(value.tensor))
  assert scalars == {
    ("train/loss", 10): 0.5,
    ("train/images_per_s", 10): 12.0,
    ("eval/mean_f1", 20): 61.25,
  }
  assert [r["step"] for r in workdir.read_records(str(tmp_path))] == [10, 20]
