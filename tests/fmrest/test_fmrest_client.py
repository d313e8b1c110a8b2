"""genkan's Data API driven by the real python-fmrest 1.8.0 client.

All tests here share one genkan (module fixture); each keeps to rows it made itself, marked with
a value no other test uses (`unique`), so the order they run in does not matter.
"""

from __future__ import annotations

import pytest
from fmrest.exceptions import FileMakerError

from conftest import Genkan


@pytest.fixture
def fms(genkan: Genkan):
    """A logged-in python-fmrest client on the demo database's `customers` layout."""
    server = genkan.server()
    server.login()
    yield server
    if server._token:
        server.logout()


@pytest.fixture
def shop(genkan: Genkan):
    """A logged-in client on the `shop` database's `products` layout (number fields)."""
    server = genkan.server(database="shop", layout="products")
    server.login()
    yield server
    if server._token:
        server.logout()


def add_products(shop, category: str, prices: list[int]) -> list[int]:
    return [
        shop.create_record({"name": f"p{price}", "category": category, "price": price,
                            "weight": price / 100})
        for price in prices
    ]


@pytest.mark.parametrize("version", ["v1", "v2", "vLatest"])
def test_login_then_read_then_logout_in_every_api_version(genkan: Genkan, version: str):
    server = genkan.server(api_version=version)
    token = server.login()
    assert isinstance(token, str) and len(token) >= 32
    records = server.get_records(limit=2)
    assert records.info["foundCount"] >= 4
    assert records.info["returnedCount"] == 2
    first = records[0]
    assert first.record_id == 1
    assert first.name == "佐藤 花子"
    assert server.logout() is True
    # The token is gone on the server, not just forgotten by the client.
    response = genkan.request("GET", "/databases/demo/layouts/customers/records",
                              headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["messages"][0]["code"] == "952"


def test_create_record_then_get_record(fms, unique: str):
    record_id = fms.create_record({"name": unique, "phone": "+81300000001", "note": "折り返し希望"})
    assert isinstance(record_id, int) and record_id > 4
    record = fms.get_record(record_id)
    assert record.record_id == record_id
    assert record.modification_id == 0
    assert record.name == unique
    assert record.phone == "+81300000001"
    assert record.note == "折り返し希望"
    assert record.email == ""  # empty fields come back as "", not null
    portal = record["portal_contacts"]
    assert list(portal) == []
    assert portal.info["foundCount"] == 0


def test_edit_record_checks_the_mod_id(fms, unique: str):
    record_id = fms.create_record({"name": unique, "note": "v0"})
    # python-fmrest sends modId only when it is truthy (`if mod_id:`), so a stale modId of 0
    # would silently not be checked: move the record past modId 0 first.
    assert fms.edit_record(record_id, {"note": "v0.5"}) is True
    before = fms.get_record(record_id)
    assert before.modification_id == 1
    assert fms.edit_record(record_id, {"note": "v1"}, mod_id=before.modification_id) is True
    after = fms.get_record(record_id)
    assert after.note == "v1"
    assert after.modification_id == before.modification_id + 1

    with pytest.raises(FileMakerError):
        fms.edit_record(record_id, {"note": "stale write"}, mod_id=before.modification_id)
    assert fms.last_error == 306
    unchanged = fms.get_record(record_id)
    assert unchanged.note == "v1"
    assert unchanged.modification_id == after.modification_id

    # The Record-object path: python-fmrest sends only the changed fields and the modId.
    unchanged.note = "v2"
    assert fms.edit(unchanged, validate_mod_id=True) is True
    final = fms.get_record(record_id)
    assert (final.note, final.name, final.modification_id) == ("v2", unique, after.modification_id + 1)


def test_edit_without_mod_id_is_last_writer_wins(fms, unique: str):
    record_id = fms.create_record({"name": unique})
    assert fms.edit_record(record_id, {"note": "a"}) is True
    assert fms.edit_record(record_id, {"note": "b"}) is True
    record = fms.get_record(record_id)
    assert (record.note, record.modification_id) == ("b", 2)


def test_find_with_an_omit_request(fms, unique: str):
    for note in ["keep-1", "drop", "keep-2"]:
        fms.create_record({"name": f"{unique} {note}", "assigned_agent": unique, "note": note})
    found = fms.find([{"assigned_agent": f"=={unique}"}, {"note": "drop", "omit": "true"}])
    assert sorted(record.note for record in found) == ["keep-1", "keep-2"]
    assert found.info["foundCount"] == 2
    assert found.info["returnedCount"] == 2


def test_find_number_ranges_and_comparisons(shop, unique: str):
    add_products(shop, unique, [100, 200, 300, 400, 500])
    found = shop.find([{"category": f"=={unique}", "price": "200...400"}])
    assert sorted(record.price for record in found) == [200, 300, 400]
    found = shop.find([{"category": f"=={unique}", "price": ">350"}])
    assert sorted(record.price for record in found) == [400, 500]
    found = shop.find([{"category": f"=={unique}", "price": 300}])
    [record] = list(found)
    # Number fields come back as JSON numbers.
    assert record.price == 300 and type(record.price) is int
    assert record.weight == 3.0 and type(record.weight) is float


def test_find_with_several_requests_is_an_or(shop, unique: str):
    add_products(shop, unique, [10, 20, 30, 40])
    found = shop.find([{"category": f"=={unique}", "price": 10},
                       {"category": f"=={unique}", "price": "30...40"}])
    assert sorted(record.price for record in found) == [10, 30, 40]
    assert found.info["foundCount"] == 3


def test_find_that_matches_nothing_raises_401(fms, unique: str):
    with pytest.raises(FileMakerError):
        fms.find([{"name": f"=={unique}"}])
    assert fms.last_error == 401


def test_sort_ascend_and_descend_numerically(shop, unique: str):
    # 90 < 250 < 1000 as numbers, but "1000" < "250" < "90" as text.
    add_products(shop, unique, [250, 1000, 90])
    query = [{"category": f"=={unique}"}]
    ascend = shop.find(query, sort=[{"fieldName": "price", "sortOrder": "ascend"}])
    assert [record.price for record in ascend] == [90, 250, 1000]
    descend = shop.find(query, sort=[{"fieldName": "price", "sortOrder": "descend"}])
    assert [record.price for record in descend] == [1000, 250, 90]
    # get_records sends the sort as JSON in the URL (`_sort`, spaces as `+`).
    listed = shop.get_records(sort=[{"fieldName": "price", "sortOrder": "descend"}], limit=1000)
    prices = [record.price for record in listed]
    assert prices == sorted(prices, reverse=True)
    assert [price for price in prices if price in (90, 250, 1000)][:3] == [1000, 250, 90]


def test_sort_on_two_fields(shop, unique: str):
    for name, price in [("b", 1), ("a", 2), ("b", 3), ("a", 4)]:
        shop.create_record({"name": f"{unique}-{name}", "category": unique, "price": price})
    found = shop.find([{"category": f"=={unique}"}],
                      sort=[{"fieldName": "name", "sortOrder": "ascend"},
                            {"fieldName": "price", "sortOrder": "descend"}])
    assert [(record.name[-1], record.price) for record in found] == [
        ("a", 4), ("a", 2), ("b", 3), ("b", 1)]


def test_limit_and_offset(shop, unique: str):
    add_products(shop, unique, [1, 2, 3, 4, 5])
    page = shop.find([{"category": f"=={unique}"}],
                     sort=[{"fieldName": "price", "sortOrder": "ascend"}], offset=2, limit=2)
    assert [record.price for record in page] == [2, 3]
    assert (page.info["foundCount"], page.info["returnedCount"]) == (5, 2)


def test_portal_with_its_own_range(genkan: Genkan, fms, unique: str):
    customer = fms.create_record({"name": unique})
    for n in (1, 2, 3):
        fms.create_record({"customer_id": customer, "channel": "chat", "topic": f"{unique}-{n}"},
                          request_layout="contacts")

    record = fms.get_record(customer, portals=[{"name": "contacts", "offset": 2, "limit": 1}])
    portal = record["portal_contacts"]
    rows = list(portal)
    assert len(rows) == 1
    assert rows[0]["contacts::topic"] == f"{unique}-2"
    assert rows[0]["contacts::customer_id"] == customer
    assert (portal.info["foundCount"], portal.info["returnedCount"]) == (3, 1)
    assert portal.info["table"] == "contacts"

    # All rows when no range is asked for (FileMaker's default portal limit is 50).
    everything = list(fms.get_record(customer)["portal_contacts"])
    assert [row["contacts::topic"] for row in everything] == [f"{unique}-{n}" for n in (1, 2, 3)]

    # find sends the portal range in the body (`offset.contacts`, `limit.contacts`).
    [found] = list(fms.find([{"name": f"=={unique}"}],
                            portals=[{"name": "contacts", "offset": 3, "limit": 5}]))
    portal = found["portal_contacts"]
    assert [row["contacts::topic"] for row in portal] == [f"{unique}-3"]
    assert (portal.info["foundCount"], portal.info["returnedCount"]) == (3, 1)


def test_delete_record_then_get_record_raises_101(fms, unique: str):
    record_id = fms.create_record({"name": unique})
    assert fms.delete_record(record_id) is True
    with pytest.raises(FileMakerError):
        fms.get_record(record_id)
    assert fms.last_error == 101
    with pytest.raises(FileMakerError):
        fms.delete_record(record_id)
    assert fms.last_error == 101


def test_logout_ends_the_session(genkan: Genkan):
    server = genkan.server()
    token = server.login()
    assert server.logout() is True
    assert server.last_error == 0
    # python-fmrest now sends no token at all: the server answers 952.
    with pytest.raises(FileMakerError):
        server.get_records()
    assert server.last_error == 952
    # Logging out the same token again is an unknown token.
    server._token = token
    with pytest.raises(FileMakerError):
        server.logout()
    assert server.last_error == 952


def test_context_manager_logs_out(genkan: Genkan):
    with genkan.server() as server:
        token = server.login()
        assert server.get_record(2).name == "鈴木 一郎"
    response = genkan.request("GET", "/validateSession", headers={"Authorization": f"Bearer {token}"})
    assert (response.status_code, response.json()["messages"][0]["code"]) == (401, "952")


def test_metadata_calls(genkan: Genkan, fms):
    info = fms.get_product_info()
    assert info["dateFormat"] == "MM/dd/yyyy"
    assert info["timeStampFormat"] == "MM/dd/yyyy HH:mm:ss"
    databases = fms.get_databases()
    assert {"name": "demo"} in databases and {"name": "shop"} in databases
    layouts = fms.get_layouts()
    assert {layout["name"] for layout in layouts} >= {"customers", "contacts"}
    fields = fms.get_layout()
    assert [field["name"] for field in fields] == ["name", "phone", "email", "assigned_agent", "note"]
    portals = fms.get_layout(metadata="portals")
    assert "contacts" in portals
    shop = genkan.server(database="shop", layout="products")
    shop.login()
    numeric = {field["name"]: field["result"] for field in shop.get_layout()}
    assert numeric == {"name": "text", "category": "text", "price": "number", "weight": "number"}
    shop.logout()


def test_wrong_password_raises_212(genkan: Genkan):
    server = genkan.server(user="nobody-here", password="wrong")
    with pytest.raises(FileMakerError):
        server.login()
    assert server.last_error == 212
    assert server._token is None


def test_unknown_layout_raises_105(fms):
    with pytest.raises(FileMakerError):
        fms.get_records(request_layout="no such layout")
    assert fms.last_error == 105


def test_date_formats_are_accepted(fms):
    for keyword in ("us", "file", "iso-8601"):
        found = fms.find([{"name": "佐藤"}], date_format=keyword)
        assert found.info["foundCount"] >= 1
        assert fms.get_records(limit=1, date_format=keyword)[0].record_id == 1


def test_a_layout_name_with_spaces_and_japanese(genkan: Genkan):
    # python-fmrest puts the layout name into the path as is; requests sends it %-encoded.
    server = genkan.server(layout="Customer List 一覧")
    server.login()
    first = server.get_records(limit=1)[0]
    assert first.keys() == ["name", "phone", "recordId", "modId"]
    assert (first.name, first.phone) == ("佐藤 花子", "+81312345678")
    [found] = list(server.find([{"name": "==鈴木 一郎"}]))
    assert found.record_id == 2
    # A response layout of the same table narrows what a customers request returns.
    wide = genkan.server()
    wide.login()
    narrow = wide.get_record(1, response_layout="Customer List 一覧")
    assert "email" not in narrow.keys() and narrow.name == "佐藤 花子"
    assert "email" in wide.get_record(1).keys()
    server.logout()
    wide.logout()


def test_set_globals(fms):
    assert fms.set_globals({"customers::g_agent": "tanaka"}) is True
    assert fms.last_error == 0
