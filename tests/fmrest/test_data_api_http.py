"""The Data API's envelope, status codes and input leniency, checked with raw HTTP (requests).

The contract is shared/research/records.md §1 (Claris' Data API) and §2.4 (what real clients
depend on): every answer is `{"response": {...}, "messages": [{"code": "<digits>", ...}]}`,
invalid tokens are HTTP 401 + 952, bad logins 401 + 212, FileMaker errors HTTP 500 + code,
malformed input 400.
"""

from __future__ import annotations

import json
import re

import pytest
import requests

from conftest import PASSWORD, USER, Genkan

CUSTOMERS = "/databases/demo/layouts/customers"


def envelope(response: requests.Response, status: int, code: str) -> dict:
    """Checks the envelope, the HTTP status and the FileMaker code; returns `response`."""
    assert response.headers.get("content-type", "").startswith("application/json"), (
        response.status_code, response.headers.get("content-type"), response.text[:200])
    body = response.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("response"), dict), body
    messages = body.get("messages")
    assert isinstance(messages, list) and messages, body
    assert isinstance(messages[0].get("code"), str), body
    assert re.fullmatch(r"-?\d+", messages[0]["code"]), body
    assert isinstance(messages[0].get("message"), str), body
    assert (response.status_code, messages[0]["code"]) == (status, code), body
    return body["response"]


@pytest.fixture(scope="module")
def token(genkan: Genkan) -> str:
    return genkan.login()


@pytest.fixture(scope="module")
def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def customer_count(genkan: Genkan, auth: dict) -> int:
    response = genkan.request("GET", f"{CUSTOMERS}/records?_limit=1", headers=auth)
    return envelope(response, 200, "0")["dataInfo"]["totalRecordCount"]


# --- sessions -----------------------------------------------------------------------------


def test_login_returns_the_token_in_header_and_body(genkan: Genkan):
    response = genkan.request("POST", "/databases/demo/sessions", auth=(USER, PASSWORD), json={})
    body = envelope(response, 200, "0")
    assert body["token"] == response.headers["X-FM-Data-Access-Token"]
    assert len(body["token"]) >= 32
    # The token works, as Bearer and as the X-FM-Data-Access-Token request header.
    for headers in ({"Authorization": f"Bearer {body['token']}"},
                    {"X-FM-Data-Access-Token": body["token"]}):
        answer = envelope(genkan.request("GET", "/validateSession", headers=headers), 200, "0")
        assert answer == {"isSessionInUse": True}


@pytest.mark.parametrize("body", [None, {}, {"fmDataSource": []}], ids=["no-body", "empty", "fmDataSource"])
@pytest.mark.parametrize("path", ["/databases/demo/sessions", "/databases/demo/sessions/"])
def test_login_takes_any_usual_body_and_a_trailing_slash(genkan: Genkan, path: str, body):
    response = genkan.request("POST", path, auth=(USER, PASSWORD),
                              **({} if body is None else {"json": body}))
    token = envelope(response, 200, "0")["token"]
    envelope(genkan.request("DELETE", f"/databases/demo/sessions/{token}"), 200, "0")


def test_bad_logins_are_401_212(genkan: Genkan):
    # Unknown accounts only, so the demo account's lockout counter is not touched here.
    envelope(genkan.request("POST", "/databases/demo/sessions", auth=("nobody", "x"), json={}),
             401, "212")
    envelope(genkan.request("POST", "/databases/demo/sessions", json={}), 401, "212")
    envelope(genkan.request("POST", "/databases/demo/sessions",
                            headers={"Authorization": "Basic !!!not-base64"}, json={}), 401, "212")


def test_login_to_an_unknown_database_is_802(genkan: Genkan):
    envelope(genkan.request("POST", "/databases/nope/sessions", auth=(USER, PASSWORD), json={}),
             500, "802")


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer not-a-token"},
    {"Authorization": f"Basic {__import__('base64').b64encode(b'demo:demo-password').decode()}"},
    {"X-FM-Data-Access-Token": "0" * 64},
], ids=["none", "empty-bearer", "wrong-bearer", "basic", "wrong-header"])
def test_missing_or_invalid_token_is_401_952(genkan: Genkan, headers: dict):
    envelope(genkan.request("GET", f"{CUSTOMERS}/records", headers=headers), 401, "952")
    envelope(genkan.request("GET", "/validateSession", headers=headers), 401, "952")
    envelope(genkan.request("POST", f"{CUSTOMERS}/_find", headers=headers,
                            json={"query": [{"name": "*"}]}), 401, "952")


def test_a_token_is_for_its_own_database_only(genkan: Genkan, auth: dict):
    envelope(genkan.request("GET", "/databases/shop/layouts/products/records", headers=auth),
             401, "952")


def test_product_info_and_databases_need_no_token(genkan: Genkan):
    info = envelope(genkan.request("GET", "/productInfo"), 200, "0")["productInfo"]
    assert info["dateFormat"] == "MM/dd/yyyy"
    assert info["timeFormat"] == "HH:mm:ss"
    names = envelope(genkan.request("GET", "/databases"), 200, "0")["databases"]
    assert names == [{"name": "demo"}, {"name": "shop"}]
    # Basic credentials are checked when they come along (python-fmrest sends them).
    envelope(genkan.request("GET", "/databases", auth=(USER, PASSWORD)), 200, "0")
    envelope(genkan.request("GET", "/databases", auth=("nobody", "x")), 401, "212")


def test_logout_needs_no_authorization_and_unknown_tokens_are_952(genkan: Genkan):
    token = genkan.login()
    envelope(genkan.request("DELETE", f"/databases/demo/sessions/{token}"), 200, "0")
    envelope(genkan.request("GET", "/validateSession",
                            headers={"Authorization": f"Bearer {token}"}), 401, "952")
    envelope(genkan.request("DELETE", f"/databases/demo/sessions/{token}"), 401, "952")
    envelope(genkan.request("DELETE", "/databases/demo/sessions/" + "ab" * 32), 401, "952")


# --- records: errors ----------------------------------------------------------------------


def test_unknown_layout_is_500_105(genkan: Genkan, auth: dict):
    for method, path, body in [
        ("GET", "/databases/demo/layouts/nope/records", None),
        ("GET", "/databases/demo/layouts/nope/records/1", None),
        ("POST", "/databases/demo/layouts/nope/records", {"fieldData": {"name": "x"}}),
        ("POST", "/databases/demo/layouts/nope/_find", {"query": [{"name": "x"}]}),
        ("GET", "/databases/demo/layouts/nope", None),
    ]:
        envelope(genkan.request(method, path, headers=auth, json=body), 500, "105")


def test_unknown_fields_are_500_102(genkan: Genkan, auth: dict):
    before = customer_count(genkan, auth)
    envelope(genkan.request("POST", f"{CUSTOMERS}/records", headers=auth,
                            json={"fieldData": {"name": "x", "nope": "y"}}), 500, "102")
    envelope(genkan.request("PATCH", f"{CUSTOMERS}/records/2", headers=auth,
                            json={"fieldData": {"nope": "y"}}), 500, "102")
    envelope(genkan.request("POST", f"{CUSTOMERS}/_find", headers=auth,
                            json={"query": [{"nope": "x"}]}), 500, "102")
    envelope(genkan.request("POST", f"{CUSTOMERS}/_find", headers=auth,
                            json={"query": [{"name": "*"}],
                                  "sort": [{"fieldName": "nope", "sortOrder": "ascend"}]}),
             500, "102")
    envelope(genkan.request("GET", f"{CUSTOMERS}/records", headers=auth,
                            params={"_sort": json.dumps([{"fieldName": "nope"}])}), 500, "102")
    assert customer_count(genkan, auth) == before


def test_sort_order_sideways_is_404(genkan: Genkan, auth: dict):
    sort = [{"fieldName": "name", "sortOrder": "sideways"}]
    envelope(genkan.request("POST", f"{CUSTOMERS}/_find", headers=auth,
                            json={"query": [{"name": "*"}], "sort": sort}), 500, "404")
    envelope(genkan.request("GET", f"{CUSTOMERS}/records", headers=auth,
                            params={"_sort": json.dumps(sort)}), 500, "404")


def test_find_errors(genkan: Genkan, auth: dict):
    find = f"{CUSTOMERS}/_find"
    envelope(genkan.request("POST", find, headers=auth,
                            json={"query": [{"name": "==no such customer anywhere"}]}), 500, "401")
    envelope(genkan.request("POST", find, headers=auth, json={"query": []}), 500, "400")
    envelope(genkan.request("POST", find, headers=auth, json={}), 400, "958")
    envelope(genkan.request("POST", find, headers=auth, json={"query": {"name": "x"}}), 400, "960")


def test_malformed_json_is_400_1710(genkan: Genkan, auth: dict):
    headers = {**auth, "Content-Type": "application/json"}
    for path, method in [(f"{CUSTOMERS}/_find", "POST"), (f"{CUSTOMERS}/records", "POST"),
                         (f"{CUSTOMERS}/records/1", "PATCH"), ("/databases/demo/sessions", "POST")]:
        extra = {"auth": (USER, PASSWORD)} if path.endswith("sessions") else {"headers": headers}
        if "auth" in extra:
            extra["headers"] = {"Content-Type": "application/json"}
        envelope(genkan.request(method, path, data='{"query": [', **extra), 400, "1710")


def test_limits_and_ranges_out_of_bounds_are_400_960(genkan: Genkan, auth: dict):
    records = f"{CUSTOMERS}/records"
    envelope(genkan.request("GET", f"{records}?_limit=99999999", headers=auth), 400, "960")
    envelope(genkan.request("GET", f"{records}?_limit=0", headers=auth), 400, "960")
    envelope(genkan.request("GET", f"{records}?_offset=0", headers=auth), 400, "960")
    envelope(genkan.request("GET", f"{records}?_limit=ten", headers=auth), 400, "960")
    envelope(genkan.request("POST", f"{CUSTOMERS}/_find", headers=auth,
                            json={"query": [{"name": "*"}], "limit": 99999999}), 400, "960")
    envelope(genkan.request("GET", f"{records}/1?portal=[\"contacts\"]&_limit.contacts=99999999",
                            headers=auth), 400, "960")


def test_missing_records_are_101(genkan: Genkan, auth: dict):
    for method, path in [("GET", "/records/999999"), ("DELETE", "/records/999999"),
                         ("GET", "/records/abc"), ("GET", "/records/0")]:
        envelope(genkan.request(method, CUSTOMERS + path, headers=auth), 500, "101")
    envelope(genkan.request("PATCH", f"{CUSTOMERS}/records/999999", headers=auth,
                            json={"fieldData": {"name": "x"}}), 500, "101")


def test_stale_mod_id_is_306_and_changes_nothing(genkan: Genkan, auth: dict, unique: str):
    created = envelope(genkan.request("POST", f"{CUSTOMERS}/records", headers=auth,
                                      json={"fieldData": {"name": unique}}), 200, "0")
    assert re.fullmatch(r"\d+", created["recordId"]) and created["modId"] == "0"
    path = f"{CUSTOMERS}/records/{created['recordId']}"
    # modId as a number, then as a string: both are read.
    assert envelope(genkan.request("PATCH", path, headers=auth,
                                   json={"fieldData": {"note": "one"}, "modId": 0}),
                    200, "0") == {"modId": "1"}
    assert envelope(genkan.request("PATCH", path, headers=auth,
                                   json={"fieldData": {"note": "two"}, "modId": "1"}),
                    200, "0") == {"modId": "2"}
    envelope(genkan.request("PATCH", path, headers=auth,
                            json={"fieldData": {"note": "stale"}, "modId": "0"}), 500, "306")
    [record] = envelope(genkan.request("GET", path, headers=auth), 200, "0")["data"]
    assert (record["fieldData"]["note"], record["modId"]) == ("two", "2")


def test_unknown_paths_are_404_with_the_envelope(genkan: Genkan, auth: dict):
    for path in ["/fmi/data/vLatest/nope", "/fmi/data/v9/productInfo", "/fmi/data/vLatest",
                 "/fmi/data/v1/databases/demo/layouts/customers/nope/deeper"]:
        envelope(genkan.request("GET", path, headers=auth), 404, "-1")


def test_the_data_api_root_is_404_with_the_envelope(genkan: Genkan):
    envelope(genkan.request("GET", "/fmi/data/"), 404, "-1")


def test_wrong_methods_are_405_with_the_envelope(genkan: Genkan, auth: dict):
    envelope(genkan.request("POST", "/productInfo"), 405, "-1")
    envelope(genkan.request("PUT", f"{CUSTOMERS}/records/1", headers=auth, json={}), 405, "-1")
    envelope(genkan.request("DELETE", f"{CUSTOMERS}/records", headers=auth), 405, "-1")


# --- injection ----------------------------------------------------------------------------


@pytest.mark.parametrize("criterion", [
    "' OR 1=1 --",
    "\" OR \"\"=\"",
    "x'; DROP TABLE customers; --",
    "%' OR '%'='",
    "==' OR 1=1 --",
])
def test_injection_in_find_criteria_matches_nothing_and_changes_nothing(
        genkan: Genkan, auth: dict, criterion: str):
    before = customer_count(genkan, auth)
    envelope(genkan.request("POST", f"{CUSTOMERS}/_find", headers=auth,
                            json={"query": [{"name": criterion}]}), 500, "401")
    found = envelope(genkan.request("POST", f"{CUSTOMERS}/_find", headers=auth, json={
        "query": [{"name": "佐藤"}, {"note": criterion, "omit": "true"}]}), 200, "0")
    assert [record["recordId"] for record in found["data"]] == ["1"]  # the omit omitted nothing
    assert customer_count(genkan, auth) == before


@pytest.mark.parametrize("field", [
    "name; DROP TABLE customers",
    "name) OR 1=1 --",
    "ROWID",
    "\"name\"",
    "customers.name",
    "1",
])
def test_injection_in_sort_and_field_names_is_102(genkan: Genkan, auth: dict, field: str):
    before = customer_count(genkan, auth)
    envelope(genkan.request("POST", f"{CUSTOMERS}/_find", headers=auth,
                            json={"query": [{"name": "*"}],
                                  "sort": [{"fieldName": field, "sortOrder": "ascend"}]}),
             500, "102")
    envelope(genkan.request("GET", f"{CUSTOMERS}/records", headers=auth,
                            params={"_sort": json.dumps([{"fieldName": field}])}), 500, "102")
    envelope(genkan.request("POST", f"{CUSTOMERS}/_find", headers=auth,
                            json={"query": [{field: "x"}]}), 500, "102")
    envelope(genkan.request("POST", f"{CUSTOMERS}/records", headers=auth,
                            json={"fieldData": {field: "x"}}), 500, "102")
    assert customer_count(genkan, auth) == before


def test_injection_in_the_record_id_and_layout_changes_nothing(genkan: Genkan, auth: dict):
    before = customer_count(genkan, auth)
    envelope(genkan.request("DELETE", f"{CUSTOMERS}/records/1%20OR%201=1", headers=auth), 500, "101")
    envelope(genkan.request("GET", "/databases/demo/layouts/customers'%20--/records", headers=auth),
             500, "105")
    assert customer_count(genkan, auth) == before


# --- leniency -----------------------------------------------------------------------------


def test_trailing_slashes_work(genkan: Genkan, auth: dict, unique: str):
    created = envelope(genkan.request("POST", f"{CUSTOMERS}/records/", headers=auth,
                                      json={"fieldData": {"name": unique}}), 200, "0")
    listed = envelope(genkan.request("GET", f"{CUSTOMERS}/records/?_limit=1", headers=auth), 200, "0")
    assert listed["dataInfo"]["returnedCount"] == 1
    [record] = envelope(genkan.request("GET", f"{CUSTOMERS}/records/{created['recordId']}/",
                                       headers=auth), 200, "0")["data"]
    assert record["fieldData"]["name"] == unique
    envelope(genkan.request("GET", "/productInfo/"), 200, "0")
    envelope(genkan.request("GET", "/databases/demo/layouts/", headers=auth), 200, "0")


@pytest.mark.parametrize("limit,offset", [("2", "2"), (2, 2)], ids=["strings", "numbers"])
def test_find_limit_and_offset_as_strings_or_numbers(genkan: Genkan, auth: dict, limit, offset):
    found = envelope(genkan.request("POST", f"{CUSTOMERS}/_find", headers=auth, json={
        "query": [{"phone": "+81*"}], "limit": limit, "offset": offset,
        "sort": [{"fieldName": "phone", "sortOrder": "ascend"}]}), 200, "0")
    assert found["dataInfo"]["returnedCount"] == 2
    assert found["dataInfo"]["foundCount"] >= 4
    # phones ascending: +81112345678, +81312345678, +81312349999, +81661234567, ...
    assert [r["fieldData"]["phone"] for r in found["data"]] == ["+81312345678", "+81312349999"]


def test_list_limit_and_offset_in_the_query(genkan: Genkan, auth: dict):
    listed = envelope(genkan.request("GET", f"{CUSTOMERS}/records?_offset=2&_limit=2", headers=auth),
                      200, "0")
    assert [r["recordId"] for r in listed["data"]] == ["2", "3"]
    assert listed["dataInfo"]["returnedCount"] == 2
    assert isinstance(listed["dataInfo"]["foundCount"], int)


@pytest.mark.parametrize("value", ["0", "1", "2", 0, 1, 2])
def test_dateformats_0_1_2_are_accepted(genkan: Genkan, auth: dict, value):
    envelope(genkan.request("POST", f"{CUSTOMERS}/_find", headers=auth,
                            json={"query": [{"name": "佐藤"}], "dateformats": value}), 200, "0")
    envelope(genkan.request("GET", f"{CUSTOMERS}/records?dateformats={value}&_limit=1",
                            headers=auth), 200, "0")


@pytest.mark.parametrize("value", ["7", 7, "us", -1])
def test_other_dateformats_are_refused(genkan: Genkan, auth: dict, value):
    envelope(genkan.request("POST", f"{CUSTOMERS}/_find", headers=auth,
                            json={"query": [{"name": "佐藤"}], "dateformats": value}), 400, "960")
    envelope(genkan.request("GET", f"{CUSTOMERS}/records?dateformats={value}&_limit=1",
                            headers=auth), 400, "960")


def test_plus_is_a_space_in_query_strings(genkan: Genkan, auth: dict):
    sort = '[{"fieldName":+"phone",+"sortOrder":+"descend"}]'
    listed = envelope(genkan.request("GET", f"{CUSTOMERS}/records?_limit=1&_sort={sort}",
                                     headers=auth), 200, "0")
    assert listed["dataInfo"]["returnedCount"] == 1


def test_portal_ranges_in_the_body_or_the_query(genkan: Genkan, auth: dict):
    # Customer 1 has two contacts in the demo data.
    for path, body in [
        (f"{CUSTOMERS}/_find", {"query": [{"name": "佐藤 花子"}], "portal": ["contacts"],
                                "offset.contacts": 2, "limit.contacts": 1}),
        (f"{CUSTOMERS}/_find?_offset.contacts=2&_limit.contacts=1",
         {"query": [{"name": "佐藤 花子"}], "portal": ["contacts"]}),
    ]:
        [record] = envelope(genkan.request("POST", path, headers=auth, json=body), 200, "0")["data"]
        assert [row["contacts::topic"] for row in record["portalData"]["contacts"]] == ["配送日の変更"]
        [info] = record["portalDataInfo"]
        assert (info["portalObjectName"], info["foundCount"], info["returnedCount"]) == (
            "contacts", 2, 1)
    [record] = envelope(genkan.request(
        "GET", f"{CUSTOMERS}/records/1?portal=%5B%22contacts%22%5D&_offset.contacts=1&_limit.contacts=1",
        headers=auth), 200, "0")["data"]
    assert [row["contacts::topic"] for row in record["portalData"]["contacts"]] == ["請求について"]


def test_record_shape(genkan: Genkan, auth: dict):
    found = envelope(genkan.request("GET", f"{CUSTOMERS}/records/1", headers=auth), 200, "0")
    info = found["dataInfo"]
    assert (info["database"], info["layout"], info["table"]) == ("demo", "customers", "customers")
    assert (info["foundCount"], info["returnedCount"]) == (1, 1)
    [record] = found["data"]
    assert set(record) == {"fieldData", "portalData", "recordId", "modId", "portalDataInfo"}
    assert record["recordId"] == "1" and re.fullmatch(r"\d+", record["modId"])
    assert record["fieldData"]["name"] == "佐藤 花子"
    row = record["portalData"]["contacts"][0]
    assert re.fullmatch(r"\d+", row["recordId"]) and re.fullmatch(r"\d+", row["modId"])
    assert row["contacts::customer_id"] == 1  # a number field as a JSON number


def test_scripts_are_refused_with_104(genkan: Genkan, auth: dict):
    envelope(genkan.request("GET", f"{CUSTOMERS}/script/Nightly", headers=auth), 500, "104")
    envelope(genkan.request("GET", f"{CUSTOMERS}/records?script=Nightly", headers=auth), 500, "104")


# --- find operators -----------------------------------------------------------------------


def test_find_operators_on_text(genkan: Genkan, auth: dict, unique: str):
    def names(criterion: str, field: str = "name", **also: str) -> list[str]:
        response = genkan.request("POST", f"{CUSTOMERS}/_find", headers=auth,
                                  json={"query": [{field: criterion, **also}],
                                        "sort": [{"fieldName": "name", "sortOrder": "ascend"}]})
        if response.json()["messages"][0]["code"] == "401":
            envelope(response, 500, "401")
            return []
        return [r["fieldData"]["name"] for r in envelope(response, 200, "0")["data"]]

    assert names("sato") == ["Sato Kenji"]  # word begins, any case
    assert names("ato") == []  # not the middle of a word
    assert names("花子") == ["佐藤 花子"]  # a later word
    assert names("==佐藤") == []  # == is the whole field
    assert names("==佐藤 花子") == ["佐藤 花子"]
    # = alone: the field is empty; * alone: it is not.
    for name, note in [(f"{unique}-empty", ""), (f"{unique}-full", "x")]:
        envelope(genkan.request("POST", f"{CUSTOMERS}/records", headers=auth,
                                json={"fieldData": {"name": name, "note": note, "email": unique}}),
                 200, "0")
    assert names("=", "note", email=unique) == [f"{unique}-empty"]
    assert names("*", "note", email=unique) == [f"{unique}-full"]
    assert names("Sat*") == ["Sato Kenji"]
    assert names("S@to") == ["Sato Kenji"]
    assert names("_") == [] and names("%") == []  # LIKE's own wildcards are literal


def test_find_hash_matches_digits_only(genkan: Genkan, auth: dict):
    envelope(genkan.request("POST", f"{CUSTOMERS}/_find", headers=auth,
                            json={"query": [{"name": "#"}]}), 500, "401")


def test_layout_names_are_percent_decoded_in_the_path_but_plus_stays_a_plus(genkan: Genkan, auth: dict):
    listed = envelope(genkan.request(
        "GET", "/databases/demo/layouts/Customer%20List%20%E4%B8%80%E8%A6%A7/records?_limit=1",
        headers=auth), 200, "0")
    assert listed["dataInfo"]["layout"] == "Customer List 一覧"
    assert set(listed["data"][0]["fieldData"]) == {"name", "phone"}
    envelope(genkan.request("GET", "/databases/demo/layouts/Customer+List+一覧/records", headers=auth),
             500, "105")


def test_duplicate_record(genkan: Genkan, auth: dict, unique: str):
    created = envelope(genkan.request("POST", f"{CUSTOMERS}/records", headers=auth,
                                      json={"fieldData": {"name": unique, "note": "original"}}),
                       200, "0")
    copy = envelope(genkan.request("POST", f"{CUSTOMERS}/records/{created['recordId']}",
                                   headers=auth, json={}), 200, "0")
    assert copy["recordId"] != created["recordId"] and copy["modId"] == "0"
    found = envelope(genkan.request("POST", f"{CUSTOMERS}/_find", headers=auth,
                                    json={"query": [{"name": f"=={unique}"}]}), 200, "0")
    assert sorted((r["recordId"] for r in found["data"]), key=int) == sorted(
        [created["recordId"], copy["recordId"]], key=int)
    assert {r["fieldData"]["note"] for r in found["data"]} == {"original"}


def test_field_values_must_be_text_numbers_or_null(genkan: Genkan, auth: dict):
    for value in [True, {"a": 1}, [1]]:
        envelope(genkan.request("POST", f"{CUSTOMERS}/records", headers=auth,
                                json={"fieldData": {"name": value}}), 400, "960")
    envelope(genkan.request("POST", f"{CUSTOMERS}/records", headers=auth, json={}), 400, "958")
    envelope(genkan.request("POST", f"{CUSTOMERS}/records", headers=auth, data="[1, 2]"), 400, "960")
