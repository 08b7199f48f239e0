"""Reading a shop's interactions export by its header: timestamps (ISO 8601, epoch s/ms), the event map,
configurable and missing columns, and bad rows named by file, line/row and column."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from ugt_ensemble.errors import ConfigError, InputFileError
from ugt_ensemble.model.interaction_fields import parse_event_map, parse_timestamp
from ugt_ensemble.model.interactions import InteractionFormat, read_interactions
from ugt_ensemble.runtime.contract import TOKEN_TYPE_OF_EVENT as TOKEN

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc).timestamp()
SHOP_MAP = parse_event_map("detail=view, AddToCart=cart,transaction=purchase")


def write(tmp_path, text: str, name: str = "events.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2024-03-01T12:00:00Z", T0),
        ("2024-03-01T12:00:00+00:00", T0),
        ("2024-03-01 14:00:00+02:00", T0),
        ("2024-03-01T12:00:00", T0),  # no offset: UTC
        ("2024-03-01T12:00:00.250Z", T0 + 0.25),
        ("2024-03-01", T0 - 12 * 3600),
        (f"{int(T0)}", T0),  # epoch seconds
        (f" {int(T0)}.5 ", T0 + 0.5),
        (f"{int(T0) * 1000 + 250}", T0 + 0.25),  # epoch milliseconds
    ],
)
def test_timestamps_are_iso_8601_or_epoch_seconds_or_milliseconds(text, seconds):
    assert parse_timestamp(text) == pytest.approx(seconds)


def test_an_export_with_iso_times_and_shop_event_names_reads_in_time_order(tmp_path):
    path = write(tmp_path, "user_id,item_id,timestamp,event_type\n"
                 "u1,10,2024-03-01T12:02:00Z,transaction\n"
                 "u2,30,2024-03-01T12:00:00Z,detail\n"
                 "u1,11,2024-03-01T12:00:00Z,detail\n"
                 "u1,12,2024-03-01T12:01:00Z,addtocart\n"
                 "u2,31,2024-03-01T12:05:00Z,click\n")  # fmt: skip
    interactions = read_interactions(path, InteractionFormat(event_map=SHOP_MAP))
    first, second = interactions.histories()
    assert first.item_ids.tolist() == [11, 12, 10]
    assert first.token_types.tolist() == [TOKEN["view"], TOKEN["cart"], TOKEN["purchase"]]
    assert second.item_ids.tolist() == [30, 31] and second.token_types.tolist() == [TOKEN["view"], TOKEN["click"]]


def test_epoch_milliseconds_and_seconds_order_alike_and_ties_keep_file_order(tmp_path):
    path = write(tmp_path, f"item_id,user_id,timestamp\n1,a,{int(T0) + 60}\n2,a,{int(T0) * 1000}\n3,a,{int(T0)}\n")
    assert read_interactions(path).histories()[0].item_ids.tolist() == [2, 3, 1]


def test_configured_column_names_tab_delimiter_and_no_time_or_event_columns(tmp_path):
    path = write(tmp_path, "visitor\tproduct\n7\t100\n7\t101\n8\t100\n", "events.tsv")
    interactions = read_interactions(path, InteractionFormat(user="visitor", item="product"))
    (history,) = interactions.histories()  # user 8 has one event only
    assert history.item_ids.tolist() == [100, 101] and history.token_types.tolist() == [TOKEN["view"]] * 2


def test_skip_drops_events_and_catalog_filter_drops_unknown_items(tmp_path):
    path = write(tmp_path, "user_id,item_id,event_type\nu,1,view\nu,2,remove\nu,3,cart\nu,4,view\n")
    interactions = read_interactions(path, InteractionFormat(event_map=parse_event_map("remove=skip")))
    assert interactions.skipped == 1
    assert interactions.histories(known_items=np.array([1, 3])).pop().item_ids.tolist() == [1, 3]


def test_a_missing_column_is_named_with_the_header_and_the_option(tmp_path):
    path = write(tmp_path, "visitorid,itemid,event\n1,2,view\n")
    with pytest.raises(InputFileError) as error:
        read_interactions(path)
    message = str(error.value)
    assert str(path) in message and "no user column 'user_id'" in message and "--user-column" in message
    assert "['visitorid', 'itemid', 'event']" in message


def test_an_explicit_time_or_event_column_must_exist(tmp_path):
    path = write(tmp_path, "user_id,item_id\n1,2\n")
    with pytest.raises(InputFileError, match="no timestamp column 'ts'.*--time-column"):
        read_interactions(path, InteractionFormat(timestamp="ts", require_timestamp=True))
    with pytest.raises(InputFileError, match="no event column 'kind'.*--event-column"):
        read_interactions(path, InteractionFormat(event="kind", require_event=True))


def test_bad_rows_are_named_by_file_line_and_column(tmp_path):
    path = write(tmp_path, "user_id,item_id,timestamp,event_type\n"
                 "u,1,2024-03-01T12:00:00Z,view\n"
                 "\n"
                 "u,x1,2024-03-01T12:00:00Z,view\n"
                 "u,2,2024-13-01T12:00:00Z,view\n"
                 ",3,1700000000,view\n"
                 "u,4,,view\n"
                 "u,5,1700000000,addtocart\n"
                 "u,6,1700000000\n")  # fmt: skip
    with pytest.raises(InputFileError) as error:
        read_interactions(path)
    assert f"interactions {path}: 1 invalid row(s):\n  line 9: 3 fields, the header has 4" == str(error.value)
    path.write_text(path.read_text().replace("u,6,1700000000\n", ""))
    with pytest.raises(InputFileError) as error:
        read_interactions(path)
    lines = str(error.value).splitlines()
    assert lines[0] == f"interactions {path}: 5 invalid row(s):"
    assert lines[1] == "  line 4, column 'item_id': 'x1' is not an integer item id"
    assert lines[2].startswith("  line 5, column 'timestamp': '2024-13-01T12:00:00Z' is neither an ISO 8601 time")
    assert lines[3] == "  line 6, column 'user_id' is empty"
    assert lines[4] == "  line 7, column 'timestamp': is empty"
    assert lines[5].startswith("  line 8, column 'event_type': event type 'addtocart' is not mapped (1 event(s)); "
                               "map it with --event-map 'addtocart=view'")  # fmt: skip


def test_parquet_rows_are_named_and_timestamp_types_are_read(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    stamps = pa.array([datetime(2024, 3, 1, 12, m) for m in (5, 1, 3)], pa.timestamp("ms"))
    table = pa.table({"user": ["a", "a", "a"], "item_id": [1, 2, 3], "timestamp": stamps,
                      "event_type": ["cart", "view", "purchase"]})  # fmt: skip
    pq.write_table(table, tmp_path / "events.parquet")
    (history,) = read_interactions(tmp_path / "events.parquet", InteractionFormat(user="user")).histories()
    assert history.item_ids.tolist() == [2, 3, 1]
    assert history.token_types.tolist() == [TOKEN["view"], TOKEN["purchase"], TOKEN["cart"]]
    pq.write_table(table.set_column(1, "item_id", pa.array([1, None, 3], pa.int64())), tmp_path / "bad.parquet")
    with pytest.raises(InputFileError, match=r"bad.parquet: 1 invalid row\(s\):\n  row 2, column 'item_id': is empty"):
        read_interactions(tmp_path / "bad.parquet", InteractionFormat(user="user"))


@pytest.mark.parametrize(
    ("text", "complaint"),
    [("detail", "is not NAME=TYPE"),
     ("detail=basket", "maps to 'basket'; the types are view, click, cart, purchase, skip"),
     ("a=view,A=cart", "'A' is mapped twice")],
)  # fmt: skip
def test_a_bad_event_map_is_named(text, complaint):
    with pytest.raises(ConfigError, match=f"--event-map: .*{complaint}"):
        parse_event_map(text)
