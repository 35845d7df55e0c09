"""Stock codes of the retail catalog (data/retail/README.md): which codes are products, and their item ids.

One rule for every reader of the invoice lines (the catalog mapping and the history import), so an item
that is not in the catalog never gets purchase events and vice versa.
"""

from __future__ import annotations

from pickwise_common.catalogs import CATALOGS

# postage, manual, carriage, discount, samples, fees, commission, bad debt, pads (README "Messiness")
NON_PRODUCT_CODES = frozenset({"POST", "DOT", "M", "C2", "D", "S", "BANK CHARGES", "AMAZONFEE", "CRUK", "B",
                               "PADS"})


def is_product_code(code: str) -> bool:
    """Whether a StockCode names a product: not a service/fee code, not a gift voucher, and holding a digit
    (``DCGSSBOY`` and the like have none: the README lists them with the non-standard codes)."""
    code = code.strip()
    upper = code.upper()
    if not code or upper in NON_PRODUCT_CODES or upper.startswith("GIFT_"):
        return False
    return any(ch.isdigit() for ch in code)


def retail_item_id(code: str) -> str:
    """``85123a`` -> ``or-85123A`` (codes that differ only by letter case are one item)."""
    return CATALOGS["retail"].id_prefix + code.strip().upper()
