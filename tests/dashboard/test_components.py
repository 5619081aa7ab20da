"""The shared pieces of the dashboard's middle layers: committed(), the upload helpers, the error table."""
from __future__ import annotations

import base64
import math

import pytest
from components import text_of
from dash import no_update

from dashboard.components import committed, error_table
from dashboard.guard import is_number
from dashboard.stores.session import Outcome, upload_bytes


def test_a_refused_outcome_keeps_the_store_and_shows_its_problems():
    data, note = committed(Outcome(None, ("row 2: quantity must be a number",)))
    assert data is no_update and text_of(note) == "row 2: quantity must be a number"


def test_an_applied_outcome_writes_and_shows_its_note_then_its_warnings():
    new = {"x": 1}
    data, note = committed(Outcome(new, ("spot moved 40 %",), "market updated"))
    assert data is new and text_of(note).split() == ["market", "updated", "spot", "moved", "40", "%"]
    data, note = committed(Outcome(new, (), "market updated"))
    assert data is new and text_of(note) == "market updated"


def test_an_unchanged_value_writes_nothing_when_the_current_one_is_given():
    data, note = committed(Outcome({"x": 1}, (), "settings applied"), current={"x": 1})
    assert data is no_update and note == ""
    data, _ = committed(Outcome({"x": 2}, (), "settings applied"), current={"x": 1})
    assert data == {"x": 2}


def test_upload_bytes_decodes_a_data_url_and_refuses_anything_else():
    payload = "data:text/csv;base64," + base64.b64encode(b"instrument,quantity\n").decode()
    assert upload_bytes(payload) == b"instrument,quantity\n"
    for bad in (None, "", "no comma here", "data:text/csv;base64,@@@"):
        with pytest.raises(ValueError):
            upload_bytes(bad)


@pytest.mark.parametrize(("value", "expected"), [(1, True), (2.5, True), (-0.0, True), (True, False), (math.nan, False),
                                                 (math.inf, False), ("1", False), (None, False)])
def test_is_number_means_a_finite_int_or_float(value, expected):
    assert is_number(value) is expected


def test_the_error_table_lists_the_first_200_and_counts_the_rest():
    errors = [{"row": k, "field": "quantity", "message": "must be a number"} for k in range(201)]
    table, more = error_table(errors, csv=True)
    body = table.children[1].children
    assert len(body) == 200 and text_of(more) == "… and 1 more."
    # Row 0 is the file itself; CSV row k is line k + 1 (the header is line 1).
    assert text_of(body[0].children[0]) == "file" and text_of(body[3].children[0]) == "row 3 (line 4 of the file)"
    (only,) = error_table(errors[:2], csv=False)
    assert text_of(only.children[1].children[1].children[0]) == "row 1 (entry 1 of the list)"
