"""The published results held as data equal docs/protocol.md's tables."""

from __future__ import annotations

import pathlib

from drml_jax.scoring import published

PROTOCOL_DOC = pathlib.Path(__file__).resolve().parents[1] / "docs/protocol.md"


def _doc_table(heading: str) -> tuple[list[str], dict[str, list[str]]]:
  """(header cells, {row name: cells}) of the first table under the
  section of docs/protocol.md whose heading starts with `heading`."""
  lines = PROTOCOL_DOC.read_text().partition(f"### {heading}")[2].splitlines()
  start = next(i for i, line in enumerate(lines) if line.startswith("| "))
  table = []
  for line in lines[start:]:
    if not line.startswith("|"):
      break
    table.append([cell.strip() for cell in line.strip().strip("|").split("|")])
  header, _, *rows = table
  return header, {row[0]: row[1:] for row in rows}


def test_published_rows_equal_the_protocol_doc():
  tables = {row.table for row in published.ROWS}
  assert tables == {published.REPRODUCTION_REPORT}
  header, doc_rows = _doc_table(published.REPRODUCTION_REPORT)
  assert sorted(doc_rows) == sorted(row.name for row in published.ROWS)
  for row in published.ROWS:
    assert header == ["model", *(f"AU{a}" for a in row.scores), "mean"]
    pairs = [*row.scores.values(), row.mean]
    assert doc_rows[row.name] == [f"{f1:.2f}/{acc:.2f}" for f1, acc in pairs], (
      row.name
    )


def test_the_row_beside_a_run_needs_its_dataset_and_aus():
  aus = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)
  row = published.published_row("disfa_plus", aus)
  assert row.name == "labels {-1,1}" and row.mean == (62.42, 93.79)
  assert published.published_row("disfa_plus", [str(a) for a in aus]) is row
  assert published.published_row("disfa_plus", aus[::-1]) is None
  assert published.published_row("ck_plus", aus) is None
