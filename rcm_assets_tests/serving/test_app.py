"""The service's contract without a world: schemas from the registry, auth, limits, errors, logs, start-up
refusals. (Scoring itself, parity and HTTP: test_service_world.py.)"""

from __future__ import annotations

import json
import logging
from argparse import Namespace

import pytest
from fastapi.testclient import TestClient

from rcm_assets.cli.console import UsageError
from rcm_assets.cli.serve import is_loopback, serve_config
from rcm_assets.lib.columns import Availability, columns
from rcm_assets.serving.app import JsonFormatter, create_app
from rcm_assets.serving.bundle import ServeConfig
from rcm_assets.serving.schemas import MAX_BATCH, claim_fields

CLAIM = {"claim_id": "C-1001", "claim_version": 1, "member_id": "MEMBER-SECRET-77", "patient_name": "Ada Secret",
         "patient_dob": "1970-02-03", "patient_zip": "75105", "patient_sex": "F", "payer_id": "AETNA",
         "plan_type": "commercial", "billing_npi": "1245319599", "rendering_npi": "1245319599",
         "place_of_service": "11", "cpt_code": "99213", "icd10_primary": "E11.9", "icd10_count": 1, "units": 1,
         "billed_amount": 120.0, "service_date": "2025-05-01", "eligibility_verified": True}


@pytest.fixture()
def app_client(isolated_env):
    """An app over an empty data folder: no bundle, so it never becomes ready (scoring answers 503)."""
    from rcm_assets.platform.resources import build_resources

    config = ServeConfig(token="s3cret", reload_seconds=0, spool_dir=str(isolated_env / "spool"),
                         max_body_bytes=20_000)
    with TestClient(create_app(build_resources("dev"), config)) as client:
        yield client


AUTH = {"authorization": "Bearer s3cret"}


def test_request_schema_is_the_registry_decision_time_claims_columns(app_client):
    spec = app_client.get("/openapi.json").json()
    claim = spec["components"]["schemas"]["ClaimIn"]
    expected = [c.name for c in columns("claims") if c.availability is Availability.DECISION_TIME
                and "bronze" in c.layers]
    assert list(claim["properties"]) == claim_fields() == expected
    assert "updated_at" not in claim["properties"]  # bookkeeping is never an input
    assert claim["properties"]["billed_amount"]["description"].startswith("Charge billed")
    assert set(claim["required"]) == {"claim_id", "claim_version", "payer_id", "units", "billed_amount",
                                      "service_date"}
    assert app_client.get("/docs").status_code == 200


def test_health_ready_and_scoring_before_a_bundle(app_client):
    assert app_client.get("/healthz").json() == {"status": "ok"}
    ready = app_client.get("/readyz")
    assert ready.status_code == 503
    answer = app_client.post("/v1/score", json=CLAIM, headers=AUTH)
    assert answer.status_code == 503 and "not ready" in answer.json()["error"]
    assert "Traceback" not in answer.text


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer wrong"}, {"authorization": "Basic s3cret"}])
def test_score_routes_need_the_bearer_token(app_client, headers):
    for route in ("/v1/score", "/v1/score/x12", "/v1/reload"):
        answer = app_client.post(route, json=CLAIM, headers=headers)
        assert answer.status_code == 401, route
        assert answer.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("change", "field"), [
    ({"billed_amount": "lots"}, "billed_amount"),
    ({"service_date": "2025-13-45"}, "service_date"),
    ({"claim_status": "denied"}, "claim_status"),  # a post-outcome column is refused by name
    ({"units": None}, "units"),
])
def test_a_bad_field_answers_422_naming_it(app_client, change, field):
    answer = app_client.post("/v1/score", json={**CLAIM, **change}, headers=AUTH)
    assert answer.status_code == 422
    assert field in [f["field"] for f in answer.json()["fields"]]


def test_batch_errors_name_the_claim_and_the_limit(app_client):
    bad = {"claims": [CLAIM, {**CLAIM, "claim_version": "two"}]}
    answer = app_client.post("/v1/score", json=bad, headers=AUTH)
    assert answer.status_code == 422
    assert [f["field"] for f in answer.json()["fields"]] == ["claims[1].claim_version"]
    empty = app_client.post("/v1/score", json={"claims": []}, headers=AUTH)
    assert empty.status_code == 422 and empty.json()["fields"][0]["field"] == "claims"
    over = {"claims": [{"claim_id": str(i), "claim_version": 1, "payer_id": "A", "units": 1, "billed_amount": 1,
                        "service_date": "2025-01-01"} for i in range(MAX_BATCH + 1)]}
    assert len(json.dumps(over)) > 20_000  # the body limit answers first
    assert app_client.post("/v1/score", json=over, headers=AUTH).status_code == 413


def test_not_json_unknown_route_and_wrong_method(app_client):
    answer = app_client.post("/v1/score", content=b"{not json", headers=AUTH)
    assert answer.status_code == 422 and answer.json()["fields"] == [{"field": "body", "problem": "not JSON"}]
    missing = app_client.get("/v2/anything")
    assert missing.status_code == 404 and missing.json()["request_id"] == missing.headers["x-request-id"]
    assert app_client.get("/v1/score").status_code == 405


def test_request_id_is_kept_when_sane_else_made(app_client):
    assert app_client.get("/healthz", headers={"x-request-id": "abc-123"}).headers["x-request-id"] == "abc-123"
    made = app_client.get("/healthz", headers={"x-request-id": "bad id\nwith newline"}).headers["x-request-id"]
    assert made != "bad id\nwith newline" and len(made) == 32


def test_metrics_count_requests_by_route_and_errors(app_client):
    app_client.post("/v1/score", json={**CLAIM, "units": "x"}, headers=AUTH)
    text = app_client.get("/metrics").text
    assert 'rcm_serve_request_seconds_bucket{le="0.05",route="/v1/score"}' in text
    assert 'rcm_serve_errors_total{kind="422",route="/v1/score"} 1.0' in text


def test_logs_are_json_with_the_request_id_and_no_claim_content(app_client, caplog):
    with caplog.at_level(logging.INFO, logger="rcm.serve"):
        app_client.post("/v1/score", json={**CLAIM, "billed_amount": "oops"}, headers={**AUTH, "x-request-id": "r-9"})
    lines = [JsonFormatter().format(r) for r in caplog.records if r.name == "rcm.serve"]
    request = [json.loads(line) for line in lines if json.loads(line)["msg"] == "request"]
    assert request and request[-1]["request_id"] == "r-9" and request[-1]["status"] == 422
    for secret in ("MEMBER-SECRET-77", "Ada Secret", "75105", "oops", "E11.9"):
        assert all(secret not in line for line in lines)


def args(host="127.0.0.1"):
    return Namespace(host=host, day=None, reload_seconds=30.0, request_timeout=10.0, load_timeout=60.0)


def test_start_up_refuses_without_a_token_outside_the_demo_or_on_a_public_address(monkeypatch):
    monkeypatch.delenv("RCM_API_TOKEN", raising=False)
    monkeypatch.setenv("RCM_ENV", "prod")
    with pytest.raises(UsageError, match="RCM_API_TOKEN"):
        serve_config(args())
    monkeypatch.setenv("RCM_ENV", "dev")
    with pytest.raises(UsageError, match="RCM_API_TOKEN"):  # only the demo environment serves without one
        serve_config(args())
    monkeypatch.setenv("RCM_ENV", "demo")
    assert serve_config(args()).token is None  # the demo on loopback
    with pytest.raises(UsageError, match="loopback"):
        serve_config(args("0.0.0.0"))
    monkeypatch.setenv("RCM_API_TOKEN", "t")
    assert serve_config(args("0.0.0.0")).token == "t"
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1")
