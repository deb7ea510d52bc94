"""The layering of common/ stays true: the feed library knows no service and no contract."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("order_service", "invoicing_service", "shipping_service")

# package → prefixes of modules it must never import
FORBIDDEN = {
    # The library exposes what a follower knows as plain data; the host picks the metrics and logging libraries.
    "common/feeds": ("common.service", "common.contracts", "prometheus_client", "pythonjsonlogger", *SERVICES),
    "common/contracts": ("common.service", "common.feeds", *SERVICES),
    "common/service": SERVICES,
    "order_service": ("invoicing_service", "shipping_service"),
    "invoicing_service": ("order_service", "shipping_service"),
    "shipping_service": ("order_service", "invoicing_service"),
}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth of its code."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def violations(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return [f"{path.relative_to(REPO)} imports {module}"
            for path in sorted((REPO / package).rglob("*.py")) if "migrations" not in path.parts
            for module in sorted(imported_modules(path))
            if any(module == prefix or module.startswith(prefix + ".") for prefix in forbidden)]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_nothing_its_layer_forbids(package):
    assert violations(package, FORBIDDEN[package]) == []


def test_the_rule_finds_a_forbidden_import(tmp_path, monkeypatch):
    planted = REPO / "common" / "feeds" / "_planted_for_test.py"
    planted.write_text("from order_service.models import Order\nimport common.service.db\n")
    try:
        assert violations("common/feeds", FORBIDDEN["common/feeds"]) == [
            "common/feeds/_planted_for_test.py imports common.service.db",
            "common/feeds/_planted_for_test.py imports order_service.models",
            "common/feeds/_planted_for_test.py imports order_service.models.Order"]
    finally:
        planted.unlink()


def test_the_feed_library_exports_its_public_api_in_about_a_dozen_names():
    import common.feeds

    assert 8 <= len(common.feeds.__all__) <= 16
    assert all(hasattr(common.feeds, name) for name in common.feeds.__all__)
