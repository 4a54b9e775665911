"""Imports point one way: `aios` imports no app, marketplace imports nothing of knowledge, and
knowledge uses only marketplace's models, QuerySets and demo plan (STYLE.md, "Layout"). Read
from the source, so a function-level import counts."""

import ast
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
APPS = ("marketplace", "knowledge")
# What knowledge may import from marketplace: its models, their QuerySets, and the demo data
# set's plan and words, which knowledge's demo entries are drawn from.
MARKETPLACE_PUBLIC = ("marketplace.models", "marketplace.managers", "marketplace.demo")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module `source` (the text of `module`) imports, relative imports resolved;
    `from a import b` counts as `a.b`, since b may be a module."""
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*parent, base] if base else parent)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(f"{package}.")


def violations(module: str, imports: set[str]) -> list[str]:
    """The imports of `module` that point the wrong way."""
    wrong = []
    for name in sorted(imports):
        if _within(module, "aios") and any(_within(name, app) for app in APPS):
            wrong.append(f"{module} imports {name}: aios imports no app")
        elif _within(module, "marketplace") and _within(name, "knowledge"):
            wrong.append(f"{module} imports {name}: knowledge depends on marketplace, not back")
        elif (
            _within(module, "knowledge")
            and _within(name, "marketplace")
            and name != "marketplace"
            and not any(_within(name, public) for public in MARKETPLACE_PUBLIC)
        ):
            wrong.append(f"{module} imports {name}: knowledge uses marketplace's public parts")
    return wrong


def _sources(package: str):
    for path in sorted((ROOT / package).rglob("*.py")):
        if "migrations" not in path.parts:
            yield module_name(path), path


@pytest.mark.parametrize("package", ["aios", "marketplace", "knowledge"])
def test_imports_point_one_way(package):
    wrong = []
    for module, path in _sources(package):
        imports = imported_modules(path.read_text(), module, is_package=path.name == "__init__.py")
        wrong += violations(module, imports)
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("aios.pagination", "from marketplace.managers import AGENT_ORDERINGS"),
        ("aios.urls", "import knowledge.views"),
        ("aios.api.errors", "def f():\n    from marketplace import caching\n"),
        ("knowledge.api.views", "from marketplace.api.views import validated"),
        ("knowledge.admin", "from marketplace.admin import URL_FIELDS"),
        ("knowledge.forms", "from marketplace import filters"),
        ("marketplace.demo.load", "from knowledge.models import KnowledgeEntry"),
        ("marketplace.views", "def f():\n    import knowledge\n"),
    ],
)
def test_the_rule_catches_a_wrong_import(module, source):
    assert violations(module, imported_modules(source, module))


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("aios.pagination", "from aios.api import fields\nfrom django.db import models"),
        ("knowledge.forms", "from marketplace.models import Agent"),
        ("knowledge.views", "from marketplace.managers import AGENT_ORDERINGS"),
        ("knowledge.api.views", "from ..caching import own_entries\nfrom . import serializers"),
        ("knowledge.demo", "from marketplace.demo.rows import DemoTable, register"),
    ],
)
def test_the_rule_lets_the_right_imports_pass(module, source):
    assert not violations(module, imported_modules(source, module))


def test_relative_imports_resolve_to_their_package():
    assert imported_modules("from ..caching import own_entries", "knowledge.api.views") == {
        "knowledge.caching",
        "knowledge.caching.own_entries",
    }
