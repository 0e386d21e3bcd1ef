"""Every repository path and project module that the code and docs name exists.

Comments, docstrings and docs point readers at files (`predict/saliency.py`,
`docs/model.md`) and modules (`drml_jax.rendering.tables.format_table`);
after a move or a rename such a pointer silently leads nowhere. Scanned: the
source of the three packages and the tests, pyproject.toml, .ci/run, the
README and docs/*.md. Not scanned: benchmarks/README.md, whose log records
the tree as it was when each entry was written.
"""

import ast
import io
import pathlib
import re
import tokenize

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("drml_jax", "data_pipeline", "reference_torch")
TOP = (*PACKAGES, "tests", "docs", "benchmarks", ".ci")
# Folders that commands write, named in examples of their output.
OUTPUTS = ("workdirs", "data")

# A path: folders then a file with an extension, or anything under a
# top-level folder; not part of a longer word, path or URL.
PATH = re.compile(
  r"(?<![\w./~$-])("
  rf"(?:{'|'.join(re.escape(t) for t in TOP)})/[\w./-]*[\w/]"
  r"|(?:[\w-]+/)+[\w-]+\.(?:py|md|html|toml|json|png|jpg)"
  r")(?![\w*{<])"
)
# A dotted project module, perhaps followed by a name in it.
MODULE = re.compile(
  rf"(?<![\w./-])((?:{'|'.join(PACKAGES)})(?:\.\w+)+)(?![\w(])"
)


def _scanned() -> list[pathlib.Path]:
  files = [ROOT / "pyproject.toml", ROOT / ".ci" / "run", ROOT / "README.md"]
  files += sorted((ROOT / "docs").glob("*.md"))
  for folder in (*PACKAGES, "tests"):
    files += sorted((ROOT / folder).rglob("*.py"))
  return files


def _path_exists(token: str, source: pathlib.Path) -> bool:
  """`token` names a file or folder, from the root, from a package (the
  docs say `predict/saliency.py` for drml_jax's), or from a folder that
  holds `source`."""
  token = token.rstrip("/.")
  bases = [ROOT, *(ROOT / p for p in PACKAGES), *source.parents]
  return any((base / token).exists() for base in bases)


def _module_file(parts: list[str]) -> pathlib.Path | None:
  path = ROOT.joinpath(*parts)
  for candidate in (path.with_suffix(".py"), path / "__init__.py"):
    if candidate.is_file():
      return candidate
  return None


def _module_exists(dotted: str) -> bool:
  """The longest module prefix of `dotted` exists, and what follows it is
  at most an attribute of a name that the module's source holds."""
  parts = dotted.split(".")
  for end in range(len(parts), 1, -1):
    found = _module_file(parts[:end])
    if found is None:
      continue
    rest = parts[end:]
    if not rest:
      return True
    if len(rest) > 2:  # a name, perhaps an attribute of it
      return False
    return (
      re.search(rf"\b{re.escape(rest[0])}\b", found.read_text()) is not None
    )
  return False


def _prose(source: pathlib.Path) -> str:
  """A Python file's comments and docstrings; any other file's text."""
  text = source.read_text()
  if source.suffix != ".py":
    return text
  comments = [
    token.string
    for token in tokenize.generate_tokens(io.StringIO(text).readline)
    if token.type == tokenize.COMMENT
  ]
  docstrings = [
    ast.get_docstring(node, clean=False) or ""
    for node in ast.walk(ast.parse(text))
    if isinstance(
      node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    )
  ]
  return "\n".join(comments + docstrings)


def _dangling(source: pathlib.Path) -> list[str]:
  text = _prose(source)
  missing = []
  for match in PATH.finditer(text):
    first = match.group(1).split("/")[0]
    if first in OUTPUTS or first.isupper():  # a run's output, a placeholder
      continue
    if not _path_exists(match.group(1), source):
      missing.append(match.group(1))
  for match in MODULE.finditer(text):
    if not _module_exists(match.group(1)):
      missing.append(match.group(1))
  return missing


def test_every_path_and_module_named_exists():
  dangling = {
    str(source.relative_to(ROOT)): missing
    for source in _scanned()
    if (missing := _dangling(source))
  }
  assert not dangling, f"names of nothing that exists: {dangling}"


def test_the_scan_finds_a_dangling_pointer(tmp_path):
  """The check can fail: a made-up file and module are reported."""
  source = tmp_path / "example.py"
  source.write_text(
    '"""See drml_jax/scores.py and drml_jax.predict.preprocessing, beside\n'
    "drml_jax/predict/saliency.py and drml_jax.rendering.tables.format_table."
    '"""\n'
  )
  assert _dangling(source) == [
    "drml_jax/scores.py",
    "drml_jax.predict.preprocessing",
  ]
