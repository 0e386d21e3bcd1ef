"""python -m drml_jax.export: ONNX and StableHLO files that compute the JAX
model's logits (and intensities, with the intensity head) and carry its AUs,
thresholds and preprocessing; predict --onnx, on those files and on files
from before the head; bad inputs in one line, nothing half written.

A random DRML on 66x66 inputs with a 2x2 region grid and the intensity head
stands for the real one (it exports in seconds); one slow test exports the
full 170x170 model, without the head.
"""

from __future__ import annotations

import csv
import json
import os

import jax
import numpy as np
import onnx
import onnxruntime
import orbax.checkpoint as ocp
import pytest
import torch
from flax import nnx
from PIL import Image

from data_pipeline.sources.base import DISFA_PLUS_AUS
from drml_jax.export import __main__ as export
from drml_jax.export import stablehlo
from drml_jax.model import factory
from drml_jax.predict import __main__ as predict
from drml_jax.predict import metadata, onnx_predictor
from drml_jax.predict.programs import network_of
from drml_jax.store import checkpoint, saved_run, workdir

SIZE = 66
MODEL_CONFIG = {
  "num_aus": 12,
  "input_size": SIZE,
  "grid": [2, 2],
  "init": "he",
  "dropout": 0.0,
  "intensity": True,
}
# onnxruntime against the JAX model, relative to the largest |logit| (and
# the intensities to the largest intensity): two
# frameworks' float32 convolutions sum in different orders (4.0e-6
# measured here and 4.0e-6 on the full model).
ONNX_RTOL = 1e-5
# The reloaded StableHLO program against the JAX model built with the same
# conv forms, on the same batch: one XLA program, so equal (0 measured);
# another batch size is another program, whose sums may round otherwise
# (1.2e-6 measured between batches of 1 and 3).
STABLEHLO_RTOL = 1e-6
# Against the JAX model in the CPU's faster conv forms (FFT, banded), which
# round otherwise: 2.2e-6 measured.
FORMS_RTOL = 1e-5
# predict --onnx against predict --checkpoint: probabilities move by at
# most a quarter of the logits' difference (~4e-6 of 2.6 here), and the CSV
# rounds to 6 decimals.
PROBABILITY_ATOL = 1e-5


def relative_error(values, expected) -> float:
  """Max |values - expected| / max |expected|."""
  return float(np.abs(values - expected).max() / np.abs(expected).max())


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """An orbax checkpoint of a random DRML whose inputs are a crop minus a
  mean image (which the exports must carry)."""
  folder = tmp_path_factory.mktemp("export") / "run"
  model = factory.build_model(MODEL_CONFIG, seed=3)
  # Logits of about +-2.6 on these inputs: probabilities spread, unsaturated;
  # the intensity head's scaled up to spread the intensities over (0, 5).
  model.fc3.kernel[...] = model.fc3.kernel[...] * 0.2
  model.fc_intensity.kernel[...] = model.fc_intensity.kernel[...] * 30
  mean = np.random.default_rng(1).uniform(60, 180, (200, 200, 3))
  checkpoint.save_model(
    folder,
    model,
    MODEL_CONFIG,
    checkpoint.Inputs(
      aus=DISFA_PLUS_AUS,
      mode="crop",
      normalization="bgr_mean",
      input_size=SIZE,
      mean=mean.astype(np.float32),
    ),
  )
  return str(folder)


@pytest.fixture(scope="module")
def images():
  """Three 66x66 float32 inputs: batches of 1 and of 3 are compared."""
  return np.random.default_rng(0).random((3, SIZE, SIZE, 3), np.float32)


def _logits(model, images) -> np.ndarray:
  logits, weights = network_of(model)
  return np.asarray(jax.jit(logits)(weights, images))


def _intensities(model, images) -> np.ndarray:
  outputs, weights = network_of(model, outputs=True)
  return np.asarray(jax.jit(outputs)(weights, images)[1])


@pytest.fixture(scope="module")
def expected(run, images):
  """The JAX model's logits, in the forms it runs on this backend."""
  return _logits(saved_run.load(checkpoint=run).model, images)


@pytest.fixture(scope="module")
def expected_intensities(run, images):
  """The JAX model's intensities, likewise."""
  return _intensities(saved_run.load(checkpoint=run).model, images)


def _export(argv, capsys) -> tuple[int, str]:
  status = export.main(argv)
  captured = capsys.readouterr()
  return status, captured.err


@pytest.fixture(scope="module")
def onnx_file(run, tmp_path_factory):
  out = tmp_path_factory.mktemp("onnx") / "drml.onnx"
  assert (
    export.main(["--checkpoint", run, "--format", "onnx", "--out", str(out)])
    == 0
  )
  return out


def test_onnx_gives_the_jax_logits_for_any_batch(
  onnx_file, images, expected, expected_intensities
):
  assert os.listdir(onnx_file.parent) == [onnx_file.name]  # one file
  model = onnx.load(str(onnx_file))
  assert max(o.version for o in model.opset_import if o.domain == "") >= 17
  (batch, *rest) = model.graph.input[0].type.tensor_type.shape.dim
  assert batch.dim_param and [d.dim_value for d in rest] == [SIZE, SIZE, 3]
  session = onnxruntime.InferenceSession(
    str(onnx_file), providers=["CPUExecutionProvider"]
  )
  assert [o.name for o in session.get_outputs()] == ["logits", "intensities"]
  for count in (1, 3):
    logits, intensities = session.run(None, {"images": images[:count]})
    assert logits.shape == intensities.shape == (count, 12)
    assert relative_error(logits, expected[:count]) < ONNX_RTOL
    assert relative_error(intensities, expected_intensities[:count]) < ONNX_RTOL
  assert expected_intensities.std() > 0.3, "spread, not one value"


def test_onnx_metadata_carries_the_checkpoints_inputs(onnx_file, run):
  props = {p.key: p.value for p in onnx.load(str(onnx_file)).metadata_props}
  fields = metadata.decode(props, str(onnx_file))
  inputs = saved_run.load(checkpoint=run).inputs
  assert fields.aus == DISFA_PLUS_AUS
  assert json.loads(props["au_names"])[:2] == ["AU01", "AU02"]
  assert fields.thresholds.tolist() == [0.5] * 12
  assert fields.outputs == ("logits", "intensities") and fields.has_intensity
  assert "intensities: float32 (N, 12)" in props["output"]
  assert (fields.mode, fields.normalization, fields.input_size) == (
    "crop",
    "bgr_mean",
    SIZE,
  )
  np.testing.assert_array_equal(fields.mean, inputs.mean)


def test_metadata_round_trip_of_tuned_thresholds():
  props = metadata.encode(
    aus=(1, 2),
    thresholds=np.array([0.3, 0.71]),
    mode="resize",
    normalization="rgb",
    input_size=170,
    mean=None,
    description="test",
  )
  assert all(isinstance(v, str) for v in props.values())
  assert "mean_image" not in props
  fields = metadata.decode(props, "x.onnx")
  assert fields.aus == (1, 2) and fields.thresholds.tolist() == [0.3, 0.71]
  assert fields.outputs == ("logits",) and not fields.has_intensity
  # A file from before the intensity head has no "outputs": logits alone.
  old = {k: v for k, v in props.items() if k != "outputs"}
  assert metadata.decode(old, "x.onnx").outputs == ("logits",)
  with pytest.raises(ValueError, match="x.onnx: damaged DRML metadata"):
    metadata.decode({**props, "outputs": '["probabilities"]'}, "x.onnx")
  with pytest.raises(ValueError, match="x.onnx: metadata thresholds"):
    metadata.decode({**props, "thresholds": "[0.3]"}, "x.onnx")
  with pytest.raises(ValueError, match="x.onnx: damaged DRML metadata"):
    metadata.decode({**props, "mode": "stretch"}, "x.onnx")


def test_stablehlo_archive_gives_the_jax_logits(
  run, images, expected, expected_intensities, tmp_path
):
  out = tmp_path / "drml.zip"
  assert (
    export.main(
      ["--checkpoint", run, "--format", "stablehlo", "--out", str(out)]
    )
    == 0
  )
  assert os.listdir(tmp_path) == ["drml.zip"]
  exported, weights, props = stablehlo.read(str(out))
  fields = metadata.decode(props, str(out))
  assert fields.aus == DISFA_PLUS_AUS and fields.has_intensity
  same_forms = saved_run.load(checkpoint=run, **stablehlo.KERNELS).model
  for count in (1, 3):
    logits, intensities = map(
      np.asarray, exported.call(weights, images[:count])
    )
    same = _logits(same_forms, images[:count])  # the same batch: one program
    assert relative_error(logits, same) <= STABLEHLO_RTOL
    assert relative_error(logits, expected[:count]) < FORMS_RTOL
    same = _intensities(same_forms, images[:count])
    assert relative_error(intensities, same) <= STABLEHLO_RTOL
    wanted = expected_intensities[:count]
    assert relative_error(intensities, wanted) < FORMS_RTOL


def _read_csv(path) -> list[dict]:
  with open(path, newline="") as f:
    return list(csv.DictReader(f))


def _one_output(onnx_file, path) -> str:
  """The export as a file from before the intensity head: the logits its
  only output, no "outputs" in its metadata."""
  model = onnx.load(str(onnx_file))
  kept = [o for o in model.graph.output if o.name == "logits"]
  del model.graph.output[:]
  model.graph.output.extend(kept)
  props = [p for p in model.metadata_props if p.key != "outputs"]
  del model.metadata_props[:]
  model.metadata_props.extend(props)
  onnx.save(model, str(path))
  return str(path)


def test_predict_onnx_gives_the_jax_predictors_csv(
  run, onnx_file, tmp_path, capsys
):
  faces = np.random.default_rng(2).integers(0, 256, (3, 200, 200, 3))
  for i, face in enumerate(faces.astype(np.uint8)):
    Image.fromarray(face).save(tmp_path / f"{i}.png")
  common = [str(tmp_path), "--faces", "aligned", "--no-progress"]
  common += ["--batch-size", "4"]
  jax_csv, onnx_csv = tmp_path / "jax.csv", tmp_path / "onnx.csv"
  assert (
    predict.main([*common, "--checkpoint", run, "--out", str(jax_csv)]) == 0
  )
  assert (
    predict.main(
      [*common, "--onnx", str(onnx_file), "--out", str(onnx_csv)]
      + ["--intensity"]
    )
    == 0
  )
  assert "predicting with ONNX file" in capsys.readouterr().out
  jax_rows, onnx_rows = _read_csv(jax_csv), _read_csv(onnx_csv)
  assert list(jax_rows[0]) == list(onnx_rows[0])
  aus = [name for name in jax_rows[0] if name.startswith("AU")]
  assert aus[24:] == [f"AU{au:02d}_r" for au in DISFA_PLUS_AUS]
  values = [
    np.array([[float(row[name]) for name in aus] for row in rows])
    for rows in (jax_rows, onnx_rows)
  ]
  probabilities, intensities = values[0][:, :12], values[0][:, 24:]
  assert probabilities.std() > 0.1, "spread, not saturated"
  assert 0 <= intensities.min() and intensities.max() <= 5
  np.testing.assert_allclose(
    values[1][:, :24], values[0][:, :24], atol=PROBABILITY_ATOL
  )
  # An intensity sums five sigmoids of threshold logits that the head's 30x
  # weights make large: onnxruntime's float32 rounding moves it by up to
  # 6e-5 (measured) on its 0-5 scale, against 1e-6 for a probability.
  np.testing.assert_allclose(values[1][:, 24:], intensities, atol=2e-4)
  for name in ("file", "success"):
    assert [r[name] for r in jax_rows] == [r[name] for r in onnx_rows]

  # A file from before the head: occurrence as before, no AUxx_r columns;
  # --intensity refused in one line, nothing written.
  old = _one_output(onnx_file, tmp_path / "old.onnx")
  old_csv = tmp_path / "old.csv"
  argv = [*common, "--onnx", old, "--out", str(old_csv)]
  assert predict.main([*argv, "--intensity"]) == 2
  captured = capsys.readouterr()
  assert (
    "no intensity head" in _error_line(captured.err) and old in captured.err
  )
  assert not old_csv.exists() and not captured.out
  assert predict.main(argv) == 0
  old_rows = _read_csv(old_csv)
  assert list(old_rows[0]) == list(jax_rows[0])[: -len(DISFA_PLUS_AUS)]
  np.testing.assert_allclose(
    np.array([[float(row[name]) for name in aus[:24]] for row in old_rows]),
    values[0][:, :24],
    atol=PROBABILITY_ATOL,
  )


def test_export_intensity_refuses_a_model_without_the_head(
  run, tmp_path, capsys
):
  """--intensity: one line, before anything is written."""
  model = nnx.clone(saved_run.load(checkpoint=run).model)
  model.fc_intensity = None
  config = {k: v for k, v in MODEL_CONFIG.items() if k != "intensity"}
  folder = tmp_path / "no_head"
  checkpoint.save_model(
    folder, model, config, checkpoint.Inputs(aus=DISFA_PLUS_AUS)
  )
  for format in ("onnx", "stablehlo"):
    out = tmp_path / f"m.{format}"
    status, err = _export(
      ["--checkpoint", str(folder), "--format", format, "--out", str(out)]
      + ["--intensity"],
      capsys,
    )
    assert status == 2 and f"{folder}" in _error_line(err)
    assert "has no intensity head" in err and "--intensity" in err
    assert not out.exists()
  assert sorted(os.listdir(tmp_path)) == ["no_head"]


def _error_line(err: str) -> str:
  assert err.count("\n") == 1 and err.startswith("error: "), err
  return err


def test_checkpoints_that_are_not_drml_fail_in_one_line(tmp_path, capsys):
  not_drml = tmp_path / "resnet.pth"
  torch.save(torch.nn.Linear(3, 2).state_dict(), not_drml)
  # Random bytes lead torch's unpickler to IndexError, KeyError,
  # UnicodeDecodeError (seeds 17, 62, 54), or its own error (seed 0).
  garbage = []
  for seed in (0, 17, 54, 62):
    garbage.append(tmp_path / f"random{seed}.bin")
    garbage[-1].write_bytes(np.random.default_rng(seed).bytes(300))
  other = tmp_path / "other"
  with ocp.CheckpointManager(str(other)) as manager:
    manager.save(0, args=ocp.args.StandardSave({"w": np.zeros(3)}))
  out = tmp_path / "model.onnx"
  for source, says in (
    (not_drml, "not a DRML state_dict"),
    *((path, "is not a readable PyTorch checkpoint") for path in garbage),
    (other, "is not a readable orbax DRML checkpoint"),
  ):
    for format in ("onnx", "stablehlo"):
      status, err = _export(
        ["--checkpoint", str(source), "--format", format, "--out", str(out)],
        capsys,
      )
      assert status == 2 and says in _error_line(err) and str(source) in err
  assert not out.exists() and not any(
    name.endswith(".partial") for name in os.listdir(tmp_path)
  )


def test_bad_outputs_fail_in_one_line_before_the_model_is_read(
  tmp_path, capsys
):
  existing = tmp_path / "existing.onnx"
  existing.write_bytes(b"keep")
  a_file = tmp_path / "a_file"
  a_file.write_text("")
  missing = tmp_path / "missing" / "model.onnx"
  cases = (
    (existing, "onnx", f"{existing} already exists: pass --overwrite"),
    (tmp_path, "onnx", f"{tmp_path} is a folder"),
    (missing, "stablehlo", f"{missing.parent} is not a folder"),
    (a_file / "model.zip", "stablehlo", f"{a_file} is not a folder"),
  )
  for out, format, says in cases:
    status, err = _export(
      ["--checkpoint", str(tmp_path / "gone"), "--format", format]
      + ["--out", str(out)],
      capsys,
    )
    assert status == 2 and says in _error_line(err)
  status, err = _export(
    ["--checkpoint", "x", "--format", "tflite", "--out", "x.tflite"], capsys
  )
  assert status == 2 and "invalid choice: 'tflite'" in _error_line(err)
  assert existing.read_bytes() == b"keep" and not missing.parent.exists()
  assert sorted(os.listdir(tmp_path)) == ["a_file", "existing.onnx"]


def test_an_unwritable_folder_fails_in_one_line(tmp_path, monkeypatch, capsys):
  # As root every folder is writable: the check's answer is simulated.
  monkeypatch.setattr(export.os, "access", lambda path, mode: False)
  status, err = _export(
    ["--checkpoint", "x", "--format", "onnx", "--out", str(tmp_path / "m")],
    capsys,
  )
  assert status == 2
  assert f"{tmp_path} is not writable: pass an --out" in _error_line(err)


def test_an_interrupted_write_leaves_nothing(tmp_path):
  target = tmp_path / "model.onnx"
  with pytest.raises(KeyboardInterrupt):
    with workdir.atomic_path(str(target)) as partial:
      with open(partial, "wb") as f:
        f.write(b"half")
      raise KeyboardInterrupt
  assert os.listdir(tmp_path) == []


def test_predict_onnx_bad_files_fail_in_one_line(tmp_path, capsys):
  face = tmp_path / "face.png"
  Image.fromarray(np.zeros((200, 200, 3), np.uint8)).save(face)
  garbage = tmp_path / "garbage.onnx"
  garbage.write_bytes(b"not onnx")
  plain = tmp_path / "plain.onnx"  # a valid ONNX model, not a DRML export
  node = onnx.helper.make_node("Relu", ["images"], ["logits"])
  tensor = onnx.helper.make_tensor_value_info(
    "images", onnx.TensorProto.FLOAT, [1]
  )
  output = onnx.helper.make_tensor_value_info(
    "logits", onnx.TensorProto.FLOAT, [1]
  )
  onnx.save(
    onnx.helper.make_model(
      onnx.helper.make_graph([node], "g", [tensor], [output])
    ),
    str(plain),
  )
  for path, kind, says in (
    (garbage, ValueError, "is not a readable ONNX model"),
    (plain, ValueError, "is not a DRML export"),
    (tmp_path / "gone.onnx", FileNotFoundError, "no ONNX file at"),
  ):
    with pytest.raises(kind) as error:
      onnx_predictor.load(str(path))
    assert says in str(error.value) and str(path) in str(error.value)
  status = predict.main(
    [str(face), "--onnx", str(garbage), "--faces", "aligned", "--no-progress"]
    + ["--out", str(tmp_path / "out.csv")]
  )
  err = capsys.readouterr().err
  assert status == 2 and "is not a readable ONNX model" in _error_line(err)
  assert not (tmp_path / "out.csv").exists()
  status = predict.main(
    [str(face), "--onnx", str(plain), "--aus", "1,2", "--no-progress"]
  )
  assert status == 2 and "drop --aus" in _error_line(capsys.readouterr().err)


@pytest.mark.slow
def test_the_full_model_exports_within_tolerance(tmp_path):
  """The paper's DRML (170x170, 8x8 regions): both formats, batches 1 and 2."""
  config = {"num_aus": 12, "input_size": 170, "init": "he", "dropout": 0.0}
  folder = tmp_path / "run"
  checkpoint.save_model(
    folder,
    factory.build_model(config, seed=5),
    config,
    checkpoint.Inputs(aus=DISFA_PLUS_AUS),
  )
  images = np.random.default_rng(0).random((2, 170, 170, 3), np.float32)
  expected = _logits(saved_run.load(checkpoint=str(folder)).model, images)
  same_forms = saved_run.load(checkpoint=str(folder), **stablehlo.KERNELS).model
  for format, name in (("onnx", "m.onnx"), ("stablehlo", "m.zip")):
    out = str(tmp_path / name)
    assert (
      export.main(
        ["--checkpoint", str(folder), "--format", format, "--out", out]
      )
      == 0
    )
    for count in (1, 2):
      if format == "onnx":
        session = onnxruntime.InferenceSession(
          out, providers=["CPUExecutionProvider"]
        )
        (logits,) = session.run(None, {"images": images[:count]})
        assert relative_error(logits, expected[:count]) < ONNX_RTOL
      else:
        exported, weights, _ = stablehlo.read(out)
        logits = np.asarray(exported.call(weights, images[:count]))
        same = _logits(same_forms, images[:count])
        assert relative_error(logits, same) <= STABLEHLO_RTOL
        assert relative_error(logits, expected[:count]) < FORMS_RTOL
