"""The layering docs/architecture.md describes, checked on the source.

Command-line modules are those run with `python -m` (they hold a
`__main__` guard, or are a package's `__main__.py`); library modules never
import them. data_pipeline never imports drml_jax. In drml_jax only the
interchange module, the ONNX export (whose route is the PyTorch reference
model) and the benchmark touch PyTorch, and only the corpus package Ray.
"""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("drml_jax", "data_pipeline", "reference_torch")


def _module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(ROOT).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, pathlib.Path]:
  return {
    _module_name(p): p
    for package in PACKAGES
    for p in (ROOT / package).rglob("*.py")
  }


def _imports(path: pathlib.Path) -> set[str]:
  """Every module `path` imports (`from a import b` counts as a and a.b)."""
  names = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      names.add(node.module)
      names.update(f"{node.module}.{alias.name}" for alias in node.names)
  return names


def _internal_imports(name: str, modules: dict) -> set[str]:
  """The project modules `name` imports. `from package import module` counts
  as the module alone, as Python runs it: the package's __init__ is then
  already loading or loaded."""
  found = set()
  for node in ast.walk(ast.parse(modules[name].read_text())):
    if isinstance(node, ast.Import):
      found.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module:
      submodules = {f"{node.module}.{a.name}" for a in node.names}
      found.update(submodules & modules.keys() or {node.module})
  return {i for i in found if i in modules and i != name}


def _is_command(name: str, path: pathlib.Path) -> bool:
  return (
    name.endswith("__main__") or '__name__ == "__main__"' in path.read_text()
  )


def test_library_modules_never_import_command_line_modules():
  modules = _modules()
  commands = {name for name, path in modules.items() if _is_command(name, path)}
  assert {
    "drml_jax.train.__main__",
    "drml_jax.predict.__main__",
    "drml_jax.evaluate",
    "drml_jax.convert",
  } <= commands
  for name, path in modules.items():
    if name not in commands:
      wrong = _imports(path) & commands
      assert not wrong, (
        f"library module {name} imports command-line module(s) {wrong}"
      )


def test_data_pipeline_is_the_lower_layer():
  for name, path in _modules().items():
    if name.startswith("data_pipeline"):
      assert not any(i.split(".")[0] == "drml_jax" for i in _imports(path)), (
        name
      )


def test_the_configs_sit_below_the_network():
  """The config system reads its fields, meanings and choices from
  default.py's plain data; of the project it imports the dataset registry
  alone (the dataset names and folds)."""
  for name, path in _modules().items():
    if name.startswith("drml_jax.configs"):
      internal = {
        i
        for i in _imports(path)
        if i.split(".")[0] in PACKAGES and not i.startswith("drml_jax.configs")
      }
      assert internal <= {"data_pipeline", "data_pipeline.registry"}, name
  default = _imports(ROOT / "drml_jax" / "configs" / "default.py")
  assert default == {"ml_collections"}


def test_only_interchange_the_onnx_export_and_the_benchmark_touch_pytorch():
  allowed = (
    "drml_jax.store.interchange",
    "drml_jax.export.to_onnx",
    "drml_jax.benchmark",
  )
  for name, path in _modules().items():
    if name.startswith("drml_jax") and not name.startswith(allowed):
      torch_imports = {
        i
        for i in _imports(path)
        if i.split(".")[0] in ("torch", "reference_torch")
      }
      assert not torch_imports, f"{name} imports {torch_imports}"


def test_only_the_corpus_imports_ray():
  """Ray is the corpus command's, from the `ray` extra: predict and the rest
  never import it."""
  for name, path in _modules().items():
    if not name.startswith("drml_jax.corpus"):
      ray_imports = {i for i in _imports(path) if i.split(".")[0] == "ray"}
      assert not ray_imports, f"{name} imports {ray_imports}"


def test_no_import_circle():
  """No module reaches itself through its imports (depth-first search)."""
  modules = _modules()
  graph = {name: _internal_imports(name, modules) for name in modules}
  done, path = set(), []

  def visit(name):
    if name in path:
      cycle = path[path.index(name) :] + [name]
      raise AssertionError("import circle: " + " -> ".join(cycle))
    if name in done:
      return
    path.append(name)
    for imported in sorted(graph[name]):
      visit(imported)
    path.pop()
    done.add(name)

  for name in sorted(graph):
    visit(name)
