"""One constraint model (decision 0731): the old copies of "does this item meet the constraints?" are gone and
the retriever, the gateway and the ranking features call pickwise_common.constraints instead."""

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
RETRIEVER = ROOT / "services/retriever/src/pickwise_retriever"
GATEWAY = ROOT / "services/gateway/src/pickwise_gateway"
COMMON = ROOT / "libs/common/src/pickwise_common"

# module → top-level names that were copies of the constraint check and must not come back
GONE = {
    RETRIEVER / "catalog.py": {"satisfies"},
    RETRIEVER / "dense.py": {"milvus_filter", "_str_list"},
    GATEWAY / "popularity.py": {"matches"},
    COMMON / "ranking_features.py": {"constraint_holds", "CONSTRAINT_KEYS", "satisfaction", "_is_feature_phone",
                                     "_range_holds"},
}
USERS = [RETRIEVER / "catalog.py", RETRIEVER / "retrieval.py", GATEWAY / "popularity.py",
         GATEWAY / "recommendation.py", COMMON / "ranking_features.py"]
CONSTRAINT_FIELDS = {"brands", "brands_exclude", "price_min_inr", "price_max_inr", "ram_gb_min", "ram_gb_max",
                     "storage_gb_min", "storage_gb_max", "rating_min", "discount_pct_min", "price_bands",
                     "feature_phone", "colors"}


def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def top_level_names(module: ast.Module) -> set[str]:
    names = set()
    for node in module.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


@pytest.mark.parametrize("path", sorted(GONE), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_old_copies_are_gone(path: Path) -> None:
    assert top_level_names(tree(path)) & GONE[path] == set()


@pytest.mark.parametrize("path", USERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_services_and_ranking_features_import_the_shared_model(path: Path) -> None:
    imported = {node.module for node in ast.walk(tree(path)) if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {f"{node.module}.{a.name}" for node in ast.walk(tree(path))
                 if isinstance(node, ast.ImportFrom) and node.module for a in node.names}
    assert "pickwise_common.constraints" in imported


def test_catalog_mask_only_delegates_to_the_shared_model() -> None:
    module = tree(RETRIEVER / "catalog.py")
    catalog = next(n for n in module.body if isinstance(n, ast.ClassDef) and n.name == "Catalog")
    mask = next(n for n in catalog.body if isinstance(n, ast.FunctionDef) and n.name == "mask")
    statements = [s for s in mask.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    assert len(statements) == 1 and "constraints.mask" in ast.unparse(statements[0])


@pytest.mark.parametrize("path", [p for p in USERS if p.name != "recommendation.py"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_compares_constraint_fields_itself(path: Path) -> None:
    """A comparison that reads a constraint field (``c.ram_gb_min``, ``f.colors``) is a copy of the check."""
    offenders = []
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.Compare):
            reads = {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)} & CONSTRAINT_FIELDS
            if reads:
                offenders.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    assert offenders == []
