"""The docs run: every docstring example and every Python block in the README."""
import doctest
import importlib
import inspect
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODULES = ["linea.nn.modules._linear", "linea.nn.modules._container",
           "linea.nn.modules._normalization", "linea.nn.modules._conv", "linea.nn.modules._loss",
           "linea.keras.layers._dense", "linea.keras._sequential"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0


def readme_blocks():
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("index", range(len(readme_blocks())))
def test_readme_python_blocks_run(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(readme_blocks()[index], f"README block {index}", "exec"), {})


DOC_PAGES = sorted((ROOT / "docs").glob("*.md"))


def docs_blocks():
    return [(page.name, index, block) for page in DOC_PAGES
            for index, block in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S))]


@pytest.mark.parametrize("page, index, block", docs_blocks(), ids=lambda value: str(value)[:30])
def test_docs_python_blocks_run(page, index, block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(block, f"docs/{page} block {index}", "exec"), {})


def test_every_docs_page_has_a_tested_block_or_is_prose():
    pages_with_code = {page for page, _, _ in docs_blocks()}
    assert {"linear-and-dense.md", "porting.md", "random.md", "precision.md", "files.md"} <= pages_with_code


def test_the_site_builds_with_warnings_as_errors_and_documents_every_public_name(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra (pip install -e '.[docs]') builds the site")
    pytest.importorskip("mkdocstrings", reason="the docs extra (pip install -e '.[docs]') builds the site")
    import os
    import subprocess
    import sys

    site = tmp_path / "site"
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, DISABLE_MKDOCS_2_WARNING="true"))
    assert result.returncode == 0, result.stderr[-3000:]
    for figure in ("weight-and-kernel.png", "one-output-unit.png", "default-initialisations.png"):
        assert (site / "figures" / figure).stat().st_size > 5000  # drawn by the build, not committed
    assert not (ROOT / "docs" / "figures").exists()
    for module, page in (("linea.nn", "nn"), ("linea.optim", "optim"), ("linea.utils.data", "data"),
                         ("linea.io", "io"), ("linea.quantization", "precision")):
        html = (site / "reference" / page / "index.html").read_text()
        namespace = importlib.import_module(module)
        missing = [name for name in namespace.__all__ if f"{module}.{name}" not in html
                   and not inspect.ismodule(getattr(namespace, name))]  # submodules have pages of their own
        assert not missing, f"{module}: not in the API reference: {missing}"
