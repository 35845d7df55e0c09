"""Invoice lines -> purchase events: cancellations netted, deterministic ids, skipped and malformed lines counted."""

from __future__ import annotations

import hashlib
import math
import uuid

import pytest

from pickwise_pipeline.interactions import build_events as build_table
from pickwise_pipeline.interactions import event_id, history_from_rows
from pickwise_pipeline.retail_codes import is_product_code, retail_item_id

pytestmark = pytest.mark.unit


def build_events(rows, **window):
    table, report = build_table(rows, **window)
    return table.events(), report


def line(invoice: str, code: str, qty: int | str, date: str = "2011-01-05 10:00:00", price: str = "2.5",
         customer: str = "17850.0", desc: str = "WHITE MUG") -> list[str]:
    return [invoice, code, desc, str(qty), date, price, customer, "United Kingdom"]


def test_cancellation_takes_units_off_the_newest_purchases_first():
    rows = [line("536001", "85123A", 10, "2011-01-01 09:00:00"),
            line("536002", "85123a", 5, "2011-01-02 09:00:00"),
            line("C536003", "85123A", -7, "2011-01-03 09:00:00")]
    events, report = build_events(rows)
    assert [(e.invoice, e.quantity) for e in events] == [("536001", 8)]
    assert report.purchases_removed_by_cancellation == 1
    assert report.cancelled_units == 7 and report.cancelled_units_unmatched == 0


def test_cancellation_of_another_customer_or_item_removes_nothing_and_counts_unmatched():
    rows = [line("536001", "85123A", 3), line("C536002", "85123A", -2, customer="12000.0"),
            line("C536003", "22423", -1)]
    events, report = build_events(rows)
    assert [(e.user_id, e.quantity) for e in events] == [("17850", 3)]
    assert report.cancellation_lines == 2 and report.cancelled_units_unmatched == 3


def test_event_ids_are_deterministic_and_repeated_codes_get_their_own():
    rows = [line("536001", "85123A", 1), line("536001", "85123A", 2), line("536001", "22423", 1)]
    first, _ = build_events(rows)
    again, _ = build_events(rows)
    assert [e.event_id for e in first] == [e.event_id for e in again]
    assert len({e.event_id for e in first}) == 3
    assert first[0].event_id == str(uuid.UUID(hashlib.md5(b"retail|536001|85123A|0").hexdigest()))
    assert event_id("retail", "536001", "85123a", 1) == first[1].event_id


def test_malformed_lines_are_counted_and_skipped_without_stopping():
    rows = [line("536001", "85123A", 1), ["536002", "85123A"], line("536003", "22423", "two"),
            line("536004", "22423", 1, price="abc"), line("536005", "22423", 1, date="yesterday"),
            line("536006", "22423", 4)]
    events, report = build_events(rows)
    assert [e.invoice for e in events] == ["536001", "536006"]
    assert report.malformed == {"field_count": 1, "unreadable_number_or_date": 3}
    assert report.lines == 6


def test_non_products_no_customer_free_lines_and_exact_copies_are_skipped_and_counted():
    rows = [line("536001", "POST", 1), line("536001", "gift_0001_20", 1), line("536002", "22423", 1, customer=""),
            line("536003", "22423", 1, price="0"), line("536004", "22423", 2), line("536004", "22423", 2)]
    events, report = build_events(rows)
    assert [(e.invoice, e.quantity) for e in events] == [("536004", 2)]
    assert report.skipped == {"non_product_code": 2, "no_customer": 1, "price_not_positive": 1,
                              "duplicate_line": 1}


def test_window_bounds_are_inclusive_days():
    rows = [line("1", "22423", 1, "2011-10-31 17:00:00"), line("2", "22423", 1, "2011-11-01 08:00:00")]
    assert [e.invoice for e in build_events(rows, date_until="2011-10-31")[0]] == ["1"]
    assert [e.invoice for e in build_events(rows, date_from="2011-11-01")[0]] == ["2"]


def test_user_is_the_integer_customer_and_item_the_upper_cased_code():
    events, _ = build_events([line("536001", "15056bl", 1, customer="12346.0")])
    assert (events[0].user_id, events[0].item_id) == ("12346", "or-15056BL")


def test_product_code_rule():
    assert is_product_code("85123A") and is_product_code("15056bl")
    assert not any(is_product_code(c) for c in ("POST", "M", "m", "BANK CHARGES", "gift_0001_10", "DCGSSBOY", ""))
    assert retail_item_id(" 85123a ") == "or-85123A"


def test_history_weights_sum_purchase_log_quantities_and_clicks():
    history = history_from_rows([("u", "a", "purchase", 3), ("u", "a", "purchase", 1), ("u", "b", "click", None),
                                 ("u", "c", "view", None)])
    assert history["u"]["a"] == pytest.approx(2 + math.log(4) + math.log(2))
    assert history["u"]["b"] == 0.5 and "c" not in history["u"]


def test_copy_rows_escape_a_field_with_a_tab_or_backslash():
    odd = ["536002", "85123A", "MUG", "1", "2011-01-05 10:00:00", "2.5", "17850.0", "Back\\slash\tland"]
    table, _ = build_table([line("536001", "22423", 2, customer="12346.0"), odd])
    rows = table.copy_text().decode().splitlines()
    assert rows[0] == "536001\t22423\t0\t12346\tor-22423\t2\t2.5\tUnited Kingdom\t1294221600"
    assert rows[1].split("\t")[7] == "Back\\\\slash land"


def test_file_lines_with_extra_fields_are_counted_and_a_foreign_file_is_refused(tmp_path):
    from pickwise_common.errors import InvalidInput
    from pickwise_pipeline.interactions import COLUMNS, read_lines

    good = ",".join(line("536001", "22423", 2))
    path = tmp_path / "lines.csv"
    path.write_text(",".join(COLUMNS) + "\n" + good + "\n" + good.replace("536001", "536002") + ",extra,field\n")
    lines = read_lines(path)
    assert (len(lines.frame), lines.bad_field_count, lines.count) == (1, 1, 2)
    foreign = tmp_path / "foreign.csv"
    foreign.write_text("a,b\n1,2\n")
    with pytest.raises(InvalidInput):
        read_lines(foreign)
