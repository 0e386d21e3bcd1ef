"""The summary command: DRML's layer table."""

from drml_jax import summary


def test_summary_prints_the_layer_table(capsys):
  summary.main([])
  out = capsys.readouterr().out
  assert "region layer 8x8" in out and "160x160x32" in out and "595,968" in out
  assert out.strip().splitlines()[-1].split()[-1] == "56,867,532"
