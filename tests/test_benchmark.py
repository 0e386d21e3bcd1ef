"""The benchmark script runs end to end (smoke mode) and reports every figure.

No test asserts a time: only that each figure is there and sane.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import jax
import pytest

from drml_jax.benchmark import __main__ as cli
from drml_jax.benchmark import jax_rows, timing, torch_rows


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
  tmp = tmp_path_factory.mktemp("benchmark")
  out = tmp / "result.json"
  assert (
    cli.main(
      [
        "--smoke",
        "--steps",
        "1",
        "--out",
        str(out),
        "--data-dir",
        str(tmp / "data"),
      ]
    )
    == 0
  )
  return json.loads(out.read_text())


def test_the_run_first_names_its_devices_and_the_forms_auto_chose():
  text = cli.devices_and_forms(cli.parse_args(["--smoke"]))
  devices, forms = text.splitlines()
  assert devices.startswith(f"devices: {jax.device_count()} x ")
  assert jax.default_backend() in devices
  expected = (
    "conv1 banded, conv2 fft, conv3 chunked, conv4 chunked, conv5 chunked, "
    "region convs unrolled, region layout patches"
    if jax.default_backend() == "cpu"
    else "conv1 lax, conv2 lax, conv3 lax"
  )
  assert expected in forms, forms


@pytest.mark.slow
def test_smoke_run_reports_device_versions_and_settings(smoke):
  assert smoke["device"]["backend"] and smoke["device"]["kind"]
  assert smoke["versions"]["jax"] and smoke["versions"]["torch"]
  assert smoke["batch"] == 2 and smoke["smoke"] is True
  assert smoke["dtypes"] and smoke["protocol"]["epochs"] == 20
  assert smoke["device"]["cpu_count"] > 0 and "before" in smoke["load_average"]
  steal = smoke["cpu_steal_fraction"]
  assert steal is None or 0 <= steal <= 1


@pytest.mark.slow
def test_smoke_run_measures_every_row(smoke):
  rows = {
    (
      r["framework"],
      r["kind"],
      r["options"].get("form"),
      r["options"].get("cache"),
    ): r
    for r in smoke["rows"]
    if r["status"] == "ok"
  }
  for key in [
    ("jax", "train", None, None),
    ("jax", "eval", None, None),
    ("onnxruntime", "eval", None, None),
    ("torch", "train", "ports", None),
    ("torch", "train", "reference", None),
    ("torch", "train", "grouped", None),
    ("torch", "eval", "ports", None),
    ("torch", "eval", "reference", None),
    ("torch", "eval", "grouped", None),
    ("pipeline", "input", None, False),
    ("pipeline", "input", None, True),
  ]:
    assert key in rows, key
  for row in smoke["rows"]:
    if row["status"] != "ok":
      assert row["reason"]
      continue
    assert row["images_per_s"] > 0 and row["step_ms"] > 0
    if row["kind"] in ("train", "eval"):
      assert row["flops_per_image"] > 0 and row["achieved_tflops"] > 0


@pytest.mark.slow
def test_smoke_run_reports_flops_ratios_and_protocol_times(smoke):
  flops = smoke["flops_per_image"]
  assert flops["train"] > 2 * flops["eval"] > 0  # backward ~2x forward
  assert all(value > 0 for value in smoke["summary"]["ratios"].values())
  assert all(
    value > 0 for value in smoke["summary"]["protocol_minutes"].values()
  )


def test_peak_table_and_override():
  assert timing.peak_tflops("NVIDIA H100 80GB HBM3", "bfloat16") == 989.4
  assert timing.peak_tflops("NVIDIA H100 PCIe", "float32") == 378.0
  assert timing.peak_tflops("TPU v5 lite", "bfloat16") == 197.0
  assert timing.peak_tflops("TPU v4", "float32") is None
  assert timing.peak_tflops("cpu", "float32") is None
  assert timing.peak_tflops("cpu", "float32", override=2.5) == 2.5


def test_steal_fraction_between_two_readings():
  assert timing.steal_fraction((10, 1_000), (60, 2_000)) == 0.05
  assert timing.steal_fraction(None, (60, 2_000)) is None
  assert timing.steal_fraction((10, 1_000), (10, 1_000)) is None
  ticks = timing.cpu_ticks()
  assert ticks is None or 0 <= ticks[0] <= ticks[1]


@pytest.mark.parametrize(
  "argv",
  [
    ["--batch", "0"],
    ["--dtypes", "float16"],
    ["--region-convs", "fft"],
    ["--peak-tflops", "-1"],
  ],
)
def test_bad_options_are_one_line_errors(argv, capsys):
  with pytest.raises(SystemExit) as exit_info:
    cli.parse_args(argv)
  assert exit_info.value.code == 2
  error = capsys.readouterr().err
  assert error.startswith("error: ") and error.count("\n") == 1


def test_library_modules_import_no_command_line():
  code = (
    "import sys; import drml_jax.benchmark.jax_rows, drml_jax.benchmark.torch_rows; "
    "print(sorted(m for m in sys.modules if m.startswith('drml_jax.benchmark')))"
  )
  loaded = subprocess.run(
    [sys.executable, "-c", code],
    capture_output=True,
    text=True,
    check=True,
    cwd=pathlib.Path(__file__).resolve().parents[1],
  ).stdout
  assert (
    "__main__" not in loaded
    and "region_layer" not in loaded
    and "timing" in loaded
  )


@pytest.mark.slow
def test_region_layer_command_times_each_form(capsys):
  pytest.importorskip("torch")
  from drml_jax.benchmark import region_layer  # pylint: disable=import-outside-toplevel

  forms = ["unrolled", "torch", "torch-views"]
  assert (
    region_layer.main(
      ["--batch", "1", "--repeats", "1", "--forms", ",".join(forms)]
    )
    == 0
  )
  lines = capsys.readouterr().out.splitlines()
  assert [line.split(":")[0].strip() for line in lines] == forms
  assert all("ms forward+backward, batch 1" in line for line in lines)


def test_floor_alternates_the_rows_and_prints_the_median_ratios(
  monkeypatch, capsys
):
  from drml_jax.benchmark import floor  # pylint: disable=import-outside-toplevel

  calls = []
  # port, jax, compiled, port_eval, jax_eval, for three rounds.
  rates = iter(
    [10.0, 12.0, 8.0, 20.0, 30.0]
    + [12.0, 11.0, 11.0, 20.0, 40.0]
    + [8.0, 10.0, 10.0, 25.0, 25.0]
  )

  def run_side(side, argv):
    calls.append((side, argv))
    return next(rates)

  monkeypatch.setattr(floor, "_run_side", run_side)
  assert floor.main(["--rounds", "3", "--batch", "2"]) == 0
  assert calls == [(side, ["--batch", "2"]) for side in floor.SIDES] * 3
  out = capsys.readouterr().out
  assert (
    "| 2 | 12.00 | 11.00 | 11.00 | 20.00 | 40.00 | 0.92 | 1.00 | 2.00 |" in out
  )
  # Train over the port 1.20, 0.92, 1.25; over torch.compile 1.50, 1.00,
  # 1.00; eval 1.50, 2.00, 1.00.
  assert "JAX / port, float32 train: 1.20" in out
  assert "JAX / torch.compile grouped, float32 train: 1.00" in out
  assert out.rstrip().endswith("JAX / port, float32 eval: 1.50")


def test_floor_names_a_failed_row_in_one_line(monkeypatch, capsys):
  from drml_jax.benchmark import floor  # pylint: disable=import-outside-toplevel

  failed = subprocess.CompletedProcess(
    [], 1, stdout="", stderr="Traceback ...\nRuntimeError: out of memory\n"
  )
  monkeypatch.setattr(floor.subprocess, "run", lambda *a, **k: failed)
  assert floor.main(["--rounds", "1"]) == 2
  error = capsys.readouterr().err
  assert error.count("\n") == 1
  assert "the port row failed (RuntimeError: out of memory)" in error


def test_accelerator_check_extrapolates_one_epoch_against_the_benchmark(
  capsys,
):
  from drml_jax.benchmark import accelerator  # pylint: disable=import-outside-toplevel

  records = [
    {"kind": "train", "step": 50, "images_per_s": 100.0},  # compiles
    {"kind": "train", "step": 100, "images_per_s": 640.0},
    {"kind": "train", "step": 150, "images_per_s": 600.0},
    {"kind": "train", "step": 200, "images_per_s": 700.0},
    {"kind": "eval", "step": 200, "eval_s": 10.0},
  ]
  epoch = accelerator.epoch_figures(records, batch_size=64)
  assert epoch["train_images_per_s"] == 640.0
  assert epoch["train_s"] == 200 * 64 / 640.0 == 20.0
  benchmark = {
    "device": {"kind": "H200"},
    "summary": {
      "protocol_minutes": {
        "jax": 5.0,
        "torch_ports": 30.0,
        "torch_fastest": 12.0,
        "jax_with_input_pipeline": 5.0,
      }
    },
  }
  result = accelerator.extrapolate(epoch, benchmark)
  assert result["jax_minutes"] == 20 * (20.0 + 10.0) / 60 == 10.0
  assert result["torch_ports_minutes"] == 30.0
  text = accelerator.format_result(result)
  assert "20 epochs, JAX trainer end to end: 10.0 min" in text
  assert "PyTorch port (YIUYA/DRML) at its step rates: 30.0 min" in text
  with pytest.raises(ValueError, match="fewer than two train intervals"):
    accelerator.epoch_figures(records[:1] + records[-1:], batch_size=64)

  assert accelerator.main(["--dry-run", "--out", "/tmp/acc"]) == 0
  benchmark_line, train_line = capsys.readouterr().out.splitlines()
  assert benchmark_line.endswith(
    "-m drml_jax.benchmark --out /tmp/acc/benchmark.json"
  )
  assert (
    "--config seed --dataset synthetic --dataset-config disfa_plus_size"
    in train_line
  )
  assert train_line.endswith(
    "--num-epochs 1 --no-progress --workdir /tmp/acc/epoch"
  )


def test_disfa_plus_size_synthetic_config_matches_disfa_plus():
  from data_pipeline.builders.synthetic_au import SyntheticAu  # pylint: disable=import-outside-toplevel

  (config,) = [
    c for c in SyntheticAu.BUILDER_CONFIGS if c.name == "disfa_plus_size"
  ]
  train = config.num_train_subjects * config.frames_per_subject
  assert (
    abs(train - timing.PROTOCOL_SIZE["train_images"])
    < config.frames_per_subject
  )


def test_torch_rows_of_one_form():
  pytest.importorskip("torch")
  args = cli.parse_args(["--smoke", "--steps", "1"])
  (row,) = torch_rows.torch_rows(args, "train", forms=("ports",))
  assert row.options["form"] == "ports" and row.images_per_s > 0


@pytest.mark.parametrize("region_bn", ["affine", "batch_stats"])
def test_grouped_torch_form_computes_the_reference_form(region_bn):
  torch = pytest.importorskip("torch")
  from reference_torch.fast import FastDRML  # pylint: disable=import-outside-toplevel
  from reference_torch.model import DRML as TorchDRML  # pylint: disable=import-outside-toplevel

  torch.manual_seed(0)
  with torch_rows.torch_threads(1):
    _check_grouped_form(
      torch,
      FastDRML,
      TorchDRML(3, region_bn=region_bn, input_size=74, dropout=0.0),
    )


def _check_grouped_form(torch, FastDRML, reference):  # pylint: disable=invalid-name
  fast = FastDRML(reference)
  images = torch.randn(3, 3, 74, 74)
  outputs = [model(images) for model in (reference, fast)]
  torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-5, atol=1e-6)
  for output in outputs:
    output.square().sum().backward()
  region = fast.extractor[1]
  for i, j in [(0, 0), (3, 5), (7, 7)]:
    index = i * 8 + j
    unit = reference.extractor[1].region(i, j)
    torch.testing.assert_close(
      region.conv.weight.grad[32 * index : 32 * index + 32],
      unit[2].weight.grad,
      rtol=1e-4,
      atol=1e-6,
    )
  torch.testing.assert_close(
    fast.classifier[0].weight.grad,
    reference.classifier[0].weight.grad,
    rtol=1e-4,
    atol=1e-6,
  )
  # BN running statistics moved alike, and the state_dict converts back exactly.
  state = fast.reference_state_dict()
  assert state.keys() == reference.state_dict().keys()
  for key, value in reference.state_dict().items():
    torch.testing.assert_close(state[key], value, rtol=1e-5, atol=1e-7)
  for model in (reference, fast):
    model.eval()
  torch.testing.assert_close(
    fast(images), reference(images), rtol=1e-5, atol=1e-6
  )


@pytest.mark.slow
def test_bfloat16_parity_cost_is_measured_for_both_frameworks():
  args = cli.parse_args(["--smoke", "--dtypes", "float32,bfloat16"])
  rows = [
    timing.Row("jax bf16", "jax", "train", "bfloat16"),
    timing.Row("torch bf16", "torch", "train", "bfloat16"),
    timing.Row("jax f32", "jax", "train", "float32"),
  ]
  jax_rows.add_parity_cost(rows, args)
  for row in rows[:2]:  # bfloat16 keeps ~3 significant digits: error 1e-4..5e-2
    assert 1e-5 < row.options["logits_rel_error_vs_float32"] < 0.05, row
  assert "logits_rel_error_vs_float32" not in rows[2].options
