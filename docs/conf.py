"""Sphinx configuration of rectax's documentation site (``make docs``; ``make test`` builds it with
warnings as errors and runs its examples with ``sphinx-build -b doctest``).

What is generated, so that nothing is listed by hand:

* ``generated/api/``: one page per public module (``rectax`` and every submodule whose name has
  no leading underscore) and one page per name in that module's ``__all__``.
* ``generated/notebooks/``: copies of ``notebooks/*.ipynb``, rendered with their stored outputs
  (``make test`` executes them separately with nbmake).

A build warns (an error under ``-W``) when a public name has no page or is missing from its
module, and, under ``-n``, when a cross-reference to a rectax object does not resolve.

In the Markdown pages (README.md, docs/*.md) a ```python fence is a
:rst:dir:`testcode` block and a ```text fence right after it is its :rst:dir:`testoutput`:
``sphinx-build -b doctest`` runs each page's blocks in order in one namespace and compares what a
block prints with the text block after it (a python block without one may print anything).
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import os
import pkgutil
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import tomllib

# The examples shard over 4 devices, as the tests do (tests/conftest.py); before jax starts.
_FLAG = "--xla_force_host_platform_device_count=4"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FLAG}".strip()

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import rectax  # noqa: E402

_PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

project = "rectax"
author = _PYPROJECT["authors"][0]["name"]
copyright = f"{author}, {_PYPROJECT['license']} License"
release = rectax.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.doctest",
    "myst_nb",
]

exclude_patterns = ["_build", "README.md"]
templates_path: list[str] = []
html_theme = "furo"
html_title = f"rectax {release}"
html_theme_options = {"source_repository": _PYPROJECT["urls"]["Source"], "source_branch": "main"}

# Docstrings: Google style (Args/Returns/Raises/Example), signatures as written.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True  # NamedTuple "Attributes:" as fields, not second object descriptions
autodoc_typehints = "signature"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": False}
add_module_names = False

# Markdown and notebooks (myst-nb): notebooks are rendered with their stored outputs.
nb_execution_mode = "off"
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
myst_fence_as_directive = ["python", "text"]
suppress_warnings = ["myst.header"]

# The docs' examples: run by the doctest builder (Markdown fences above). Docstring examples are
# run by `pytest --doctest-modules rectax` (make doctest), so not a second time here.
doctest_test_doctest_blocks = ""
doctest_default_flags = doctest.DONT_ACCEPT_TRUE_FOR_1

# Cross-references: every rectax target must resolve (-n). Other libraries' objects are not
# linked (the build reads no inventories over the network), so references to them are plain text.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(jax|jaxlib|flax|optax|numpy|np|jnp|nn|nnx|equinox|eqx|chex|matplotlib)(\..*)?"),
    (r"py:.*", r"(typing|collections|types|abc|builtins|functools|enum|dataclasses)\..*"),
    (r"py:class", r"(Array|ArrayLike|DTypeLike|PRNGKeyArray|Initializer|Any|Callable|Sequence)"),
    (r"py:class", r"(Mapping|Iterable|Iterator|NoneType|Protocol|NamedTuple|Module|PyTree)"),
    (r"py:.*", r"(.*\.)?_\w+(\..*)?"),  # private modules and helpers stay plain text
    (r"py:.*", r"torch(\..*)?"),
]

GENERATED = HERE / "generated"


def public_modules() -> list[ModuleType]:
    """``rectax`` and its submodules without a leading underscore (found, not listed)."""
    found = [rectax]
    for info in pkgutil.iter_modules(rectax.__path__, "rectax."):
        if not info.name.rpartition(".")[2].startswith("_"):
            found.append(importlib.import_module(info.name))
    return found


def _directive(module: ModuleType, name: str) -> str:
    obj = getattr(module, name)
    if inspect.isclass(obj):
        return f".. autoclass:: {name}\n   :members:\n   :special-members: __call__\n"
    if callable(obj):
        return f".. autofunction:: {name}\n"
    return f".. autodata:: {name}\n   :annotation:\n"


def _title(text: str) -> str:
    return f"{text}\n{'=' * len(text)}\n"


def write_api_pages() -> None:
    """One page per public module and one per name in its ``__all__``; stale pages removed."""
    api = GENERATED / "api"
    shutil.rmtree(api, ignore_errors=True)
    api.mkdir(parents=True)
    index = [_title("API reference"), ".. toctree::\n   :maxdepth: 1\n"]
    for module in public_modules():
        # A name in __all__ that the module lacks gets no page; _check_public_names reports it.
        names = [name for name in getattr(module, "__all__", []) if hasattr(module, name)]
        index.append(f"   {module.__name__}")
        page = [
            _title(module.__name__),
            f".. automodule:: {module.__name__}\n   :no-members:\n",
            f".. currentmodule:: {module.__name__}\n",
            ".. autosummary::\n   :nosignatures:\n",
            *(f"   {name}" for name in names),
            "\n.. toctree::\n   :hidden:\n",
            *(f"   {module.__name__}.{name}" for name in names),
        ]
        (api / f"{module.__name__}.rst").write_text("\n".join(page) + "\n")
        for name in names:
            (api / f"{module.__name__}.{name}.rst").write_text(
                _title(f"{module.__name__}.{name}")
                + f"\n.. currentmodule:: {module.__name__}\n\n"
                + _directive(module, name)
            )
    (api / "index.rst").write_text("\n".join(index) + "\n")


def copy_notebooks() -> None:
    target = GENERATED / "notebooks"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        shutil.copy2(notebook, target / notebook.name)


extensions.append("sphinx.ext.autosummary")
autosummary_generate = False  # the pages above are the stubs

write_api_pages()
copy_notebooks()


def _check_public_names(app: Any, env: Any) -> None:
    """Every name in a public module's ``__all__`` exists and got an object description."""
    from sphinx.util import logging

    logger = logging.getLogger("rectax.docs")
    documented = set(env.domains["py"].objects)
    for module in public_modules():
        for name in getattr(module, "__all__", None) or ():
            qualified = f"{module.__name__}.{name}"
            if not hasattr(module, name):
                logger.warning("%s is in __all__ but not defined", qualified)
            elif qualified not in documented:
                logger.warning("public name %s has no API page", qualified)
        if not hasattr(module, "__all__"):
            logger.warning("public module %s has no __all__", module.__name__)


# --------------------------------------------------------------------------- Markdown examples
def setup(app: Any) -> None:
    from docutils import nodes
    from sphinx.ext.doctest import TestcodeDirective, TestoutputDirective

    class PythonFence(TestcodeDirective):
        """```python: a testcode block (highlighted as Python)."""

        def run(self) -> list[nodes.Node]:
            self.name = "testcode"
            return super().run()

    class TextFence(TestoutputDirective):
        """```text: the output of the python fence before it."""

        def run(self) -> list[nodes.Node]:
            self.name = "testoutput"
            return super().run()

    def accept_any_output(app: Any, doctree: nodes.document) -> None:
        # A python fence with no text fence right after it may print anything (test_readme's rule).
        for node in list(doctree.findall(nodes.literal_block)):
            if node.get("testnodetype") != "testcode":
                continue
            parent = node.parent
            following = parent[parent.index(node) + 1 :]
            nxt = following[0] if following else None
            if isinstance(nxt, nodes.literal_block) and nxt.get("testnodetype") == "testoutput":
                continue
            anything = nodes.comment("...", "...", testnodetype="testoutput")
            anything["groups"] = node["groups"]
            anything["options"] = {doctest.ELLIPSIS: True, doctest.NORMALIZE_WHITESPACE: True}
            parent.insert(parent.index(node) + 1, anything)

    app.add_directive("python", PythonFence)
    app.add_directive("text", TextFence)
    app.connect("doctree-read", accept_any_output)
    app.connect("env-check-consistency", _check_public_names)
