"""Token expiry, the session cap, login lockout and edit leases: each test starts a genkan of its
own with the settings it needs (short timeouts), so it cannot disturb or be disturbed by others.
"""

from __future__ import annotations

import time

import pytest
from fmrest.exceptions import FileMakerError

from conftest import PASSWORD, USER

CUSTOMERS = "/databases/demo/layouts/customers"


def code_of(response) -> tuple[int, str]:
    body = response.json()
    assert isinstance(body["response"], dict)
    return response.status_code, body["messages"][0]["code"]


def test_an_idle_token_expires_with_952(genkan_factory):
    genkan = genkan_factory({"session_idle_timeout": "2s"})
    server = genkan.server()
    old = server.login()
    assert server.get_record(1).name == "佐藤 花子"
    time.sleep(3)
    # python-fmrest 1.8.0 without auto_relogin (its default) passes the 952 on as FileMakerError.
    with pytest.raises(FileMakerError):
        server.get_record(1)
    assert server.last_error == 952
    assert server._token == old
    # The server says the same to a raw call: HTTP 401 + 952.
    response = genkan.request("GET", "/validateSession", headers={"Authorization": f"Bearer {old}"})
    assert code_of(response) == (401, "952")


def test_auto_relogin_gets_a_new_token_after_952(genkan_factory):
    genkan = genkan_factory({"session_idle_timeout": "2s"})
    server = genkan.server(auto_relogin=True)
    old = server.login()
    time.sleep(3)
    # python-fmrest re-logs in only when the server answered code 952: the call succeeds,
    # with a new token, and the old one stays dead.
    assert server.get_record(2).name == "鈴木 一郎"
    assert server._token and server._token != old
    assert server.last_error == 0
    response = genkan.request("GET", f"{CUSTOMERS}/records/2", headers={"Authorization": f"Bearer {old}"})
    assert code_of(response) == (401, "952")
    response = genkan.request("GET", f"{CUSTOMERS}/records/2",
                              headers={"Authorization": f"Bearer {server._token}"})
    assert code_of(response) == (200, "0")


def test_expiry_slides_with_use(genkan_factory):
    genkan = genkan_factory({"session_idle_timeout": "2s"})
    server = genkan.server()
    token = server.login()
    start = time.monotonic()
    for _ in range(5):  # about 5 s in all, more than twice the idle timeout
        time.sleep(1)
        assert server.get_records(limit=1).info["returnedCount"] == 1
    assert time.monotonic() - start > 4
    assert server._token == token


def test_logout_of_an_expired_token_is_952(genkan_factory):
    genkan = genkan_factory({"session_idle_timeout": "2s"})
    token = genkan.login()
    time.sleep(3)
    response = genkan.request("DELETE", f"/databases/demo/sessions/{token}")
    assert code_of(response) == (401, "952")


def test_the_session_cap_is_956_and_frees_on_logout_and_expiry(genkan_factory):
    genkan = genkan_factory({"max_sessions": 2, "session_idle_timeout": "2s"})
    first, second = genkan.server(), genkan.server()
    first.login()
    second.login()
    third = genkan.server()
    with pytest.raises(FileMakerError):
        third.login()
    assert third.last_error == 956
    response = genkan.request("POST", "/databases/demo/sessions", auth=(USER, PASSWORD), json={})
    assert code_of(response) == (503, "956")
    assert first.logout() is True
    assert third.login()
    # Expired sessions do not hold their place.
    time.sleep(3)
    assert genkan.login()
    assert genkan.login()


def test_five_wrong_passwords_lock_the_account(genkan_factory):
    genkan = genkan_factory()
    wrong = genkan.server(password="not-the-password")
    for _ in range(5):
        with pytest.raises(FileMakerError):
            wrong.login()
        assert wrong.last_error == 212
    right = genkan.server()
    with pytest.raises(FileMakerError):
        right.login()
    assert right.last_error == 212
    response = genkan.request("POST", "/databases/demo/sessions", auth=(USER, PASSWORD), json={})
    assert code_of(response) == (401, "212")


def test_an_edit_lease_blocks_others_with_301_until_it_expires(genkan_factory):
    genkan = genkan_factory({"lease_duration": "2s"})
    holder = {"Authorization": f"Bearer {genkan.login()}"}
    other = genkan.server()
    other.login()
    response = genkan.request("POST", f"{CUSTOMERS}/records/3/lock", headers=holder)
    assert code_of(response) == (200, "0")
    lease = response.json()["response"]["lease"]
    assert (lease["recordId"], lease["lockedBy"], lease["table"]) == ("3", "demo", "customers")

    with pytest.raises(FileMakerError):
        other.edit_record(3, {"note": "from the other session"})
    assert other.last_error == 301
    with pytest.raises(FileMakerError):
        other.delete_record(3)
    assert other.last_error == 301
    response = genkan.request("PATCH", f"{CUSTOMERS}/records/3", headers={
        "Authorization": f"Bearer {other._token}"}, json={"fieldData": {"note": "raw"}})
    assert code_of(response) == (500, "301")
    assert response.json()["response"]["lockedRecords"][0]["recordId"] == "3"
    assert other.get_record(3).note == "折り返し電話希望"

    time.sleep(3)
    assert other.edit_record(3, {"note": "after the lease"}) is True
    assert other.get_record(3).note == "after the lease"


def test_the_lease_holder_may_edit_and_that_ends_the_lease(genkan_factory):
    genkan = genkan_factory({"lease_duration": "30s"})
    holder = genkan.server()
    holder.login()
    other = genkan.server()
    other.login()
    auth = {"Authorization": f"Bearer {holder._token}"}
    assert code_of(genkan.request("POST", f"{CUSTOMERS}/records/4/lock", headers=auth)) == (200, "0")
    assert holder.edit_record(4, {"note": "by the holder"}) is True
    # The edit committed the record: the lease is gone and the other session may write at once.
    assert other.edit_record(4, {"note": "by the other"}) is True
    assert other.get_record(4).note == "by the other"
