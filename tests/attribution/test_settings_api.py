"""Settings: a GET body PUT back unchanged is accepted and changes nothing."""

from __future__ import annotations

import httpx

from tests.conftest import auth


async def _put(
    attribution: httpx.AsyncClient, headers: dict[str, str], body: dict
) -> httpx.Response:
    return await attribution.put("/v1/settings", json=body, headers=headers)


async def test_read_modify_write_keeps_the_webhook_secret(attribution, make_token, tenant) -> None:
    headers = auth(make_token(tenant, "admin"))
    set_secret = await _put(attribution, headers, {"webhook_secret": "s" * 32, "timezone": "UTC"})
    assert set_secret.status_code == 200, set_secret.text
    read = (await attribution.get("/v1/settings", headers=headers)).json()
    assert read["webhook_secret_set"] is True
    read["timezone"] = "Asia/Shanghai"
    written = await _put(attribution, headers, read)
    assert written.status_code == 200, written.text
    after = written.json()
    assert after["timezone"] == "Asia/Shanghai"
    assert after["webhook_secret_set"] is True  # the echoed `webhook_secret: null` kept it


async def test_read_modify_write_without_a_secret(attribution, make_token, tenant) -> None:
    headers = auth(make_token(tenant, "admin"))
    read = (await attribution.get("/v1/settings", headers=headers)).json()
    read["click_window_seconds"] = 3600
    written = await _put(attribution, headers, read)
    assert written.status_code == 200, written.text
    assert written.json()["click_window_seconds"] == 3600
    assert written.json()["webhook_secret_set"] is False


async def test_claiming_a_secret_without_sending_one_is_422(
    attribution, make_token, tenant
) -> None:
    headers = auth(make_token(tenant, "admin"))
    response = await _put(attribution, headers, {"webhook_secret_set": True})
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "webhook_secret" in response.json()["detail"]


async def test_an_explicit_null_secret_with_set_false_clears_it(
    attribution, make_token, tenant
) -> None:
    headers = auth(make_token(tenant, "admin"))
    await _put(attribution, headers, {"webhook_secret": "s" * 32})
    cleared = await _put(
        attribution, headers, {"webhook_secret": None, "webhook_secret_set": False}
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["webhook_secret_set"] is False


async def test_a_number_field_takes_a_json_number_only(attribution, make_token, tenant) -> None:
    # The schema says integer: `true` and "5" are refused (lax parsing would store 1 and 5),
    # and the stored settings stay as they were.
    headers = auth(make_token(tenant, "admin"))
    before = (await attribution.get("/v1/settings", headers=headers)).json()
    for body in ({"fraud": {"max_clicks_per_order": True}}, {"click_window_seconds": "3600"}):
        response = await _put(attribution, headers, body)
        assert response.status_code == 422, body
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "JSON number" in response.text
    assert (await attribution.get("/v1/settings", headers=headers)).json() == before
