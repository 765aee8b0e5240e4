"""The ES2+ client against canned answers: headers, body, status mapping, retries."""

from __future__ import annotations

import json
from typing import Any

import pytest

from leb.provisioning import es2


class Recorder:
    """A transport that answers from a list and records what was sent."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.sent: list[tuple[str, dict[str, Any], dict[str, str]]] = []

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        self.sent.append((url, json.loads(body), headers))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def ok(**data: Any) -> tuple[int, bytes]:
    return 200, json.dumps(
        {"header": {"functionExecutionStatus": {"status": "Executed-Success"}}, **data}
    ).encode()


def failed(subject: str, reason: str, status: str = "Failed") -> tuple[int, bytes]:
    codes = {"subjectCode": subject, "reasonCode": reason, "message": "server words"}
    return 200, json.dumps(
        {"header": {"functionExecutionStatus": {"status": status, "statusCodeData": codes}}}
    ).encode()


def client(transport: Recorder, retries: int = 0) -> es2.Es2Client:
    return es2.Es2Client(
        "https://smdp.example.com/",
        requester_id="op-1",
        transport=transport,
        retries=retries,
        backoff=0,
    )


def test_download_order_posts_json_with_the_es2_header() -> None:
    # given an SM-DP+ that reserves the profile
    transport = Recorder(ok(iccid="89852000000000000013"))
    # when leb orders it
    result = client(transport).download_order("call-1", iccid="89852000000000000013")
    # then the call went to the ES2+ path with the protocol header and request header
    url, body, headers = transport.sent[0]
    assert url == "https://smdp.example.com/gsma/rsp2/es2plus/downloadOrder"
    assert headers["X-Admin-Protocol"].startswith("gsma/rsp/v2.")
    assert body["header"] == {
        "functionRequesterIdentifier": "op-1",
        "functionCallIdentifier": "call-1",
    }
    # empty optional fields are left out
    assert body == {"header": body["header"], "iccid": "89852000000000000013"}
    assert result.status == es2.SUCCESS and result.data["iccid"] == "89852000000000000013"


def test_confirm_order_sends_every_optional_field_and_the_release_flag() -> None:
    transport = Recorder(ok(matchingId="AB-CD", smdpAddress="smdp.example.com"))
    # when confirming with all parameters
    result = client(transport).confirm_order(
        "call-2",
        iccid="8985200000000000001",
        eid="8" * 32,
        matching_id="AB-CD",
        confirmation_code="1234",
        smds_address="lpa.ds.gsma.com",
        release_flag=False,
    )
    # then they are all in the body, the flag as a JSON boolean
    body = transport.sent[0][1]
    assert body["releaseFlag"] is False
    assert body["eid"] == "8" * 32 and body["matchingId"] == "AB-CD"
    assert body["confirmationCode"] == "1234" and body["smdsAddress"] == "lpa.ds.gsma.com"
    assert result.data["matchingId"] == "AB-CD"


def test_cancel_and_release_use_their_function_paths() -> None:
    transport = Recorder(ok(), ok())
    c = client(transport)
    c.cancel_order("c", iccid="8985200000000000001", final_status="Unavailable")
    c.release_profile("r", iccid="8985200000000000001")
    assert transport.sent[0][0].endswith("/cancelOrder")
    assert transport.sent[0][1]["finalProfileStatusIndicator"] == "Unavailable"
    assert transport.sent[1][0].endswith("/releaseProfile")


def test_a_warning_is_a_success_that_keeps_its_status_code_data() -> None:
    transport = Recorder(failed("8.2.1", "3.7", status="Executed-WithWarning"))
    result = client(transport).release_profile("w", iccid="8985200000000000001")
    assert result.status == es2.WARNING
    assert result.status_code_data["subjectCode"] == "8.2.1"


@pytest.mark.parametrize(
    ("subject", "reason", "words"),
    [
        ("8.2.1", "3.9", "does not know this profile ICCID"),
        ("8.2.1", "3.8", "does not know this profile ICCID"),
        ("8.1.1", "2.1", "EID is not valid"),
        ("8.2.1", "3.3", "already in use"),
        ("8.2.6", "3.8", "refused the matching ID"),
        ("8.8.5", "4.10", "download order has expired"),
        ("8.2.7", "2.2", "confirmation code is required"),
        ("8.9", "9.9", "subject 8.9, reason 9.9"),
        ("8.2.5", "1.2", "the profile type: it is not allowed"),
    ],
)
def test_failed_maps_subject_and_reason_to_clear_words(
    subject: str, reason: str, words: str
) -> None:
    # given an SM-DP+ that refuses
    transport = Recorder(failed(subject, reason))
    # when leb calls it
    with pytest.raises(es2.Es2Error) as caught:
        client(transport).download_order("f", iccid="8985200000000000001")
    # then the error names the problem and keeps the codes
    assert words in str(caught.value.user_message)
    assert (caught.value.subject_code, caught.value.reason_code) == (subject, reason)
    assert caught.value.server_message == "server words"
    assert not caught.value.retryable


def test_expired_execution_is_an_error_saying_nothing_changed() -> None:
    transport = Recorder(failed("8.8", "4.2", status="Expired"))
    with pytest.raises(es2.Es2Error) as caught:
        client(transport).release_profile("e", iccid="8985200000000000001")
    assert caught.value.status == es2.EXPIRED
    assert "did not finish" in str(caught.value.user_message)


def test_a_timeout_is_retried_with_the_same_function_call_identifier() -> None:
    # given an SM-DP+ that times out once, then answers
    transport = Recorder(es2.Unreachable("ReadTimeout"), ok(iccid="8985200000000000001"))
    # when leb calls with one retry allowed
    client(transport, retries=1).download_order("same-id", iccid="8985200000000000001")
    # then both attempts carried the same identifier
    ids = [body["header"]["functionCallIdentifier"] for _url, body, _h in transport.sent]
    assert ids == ["same-id", "same-id"]


def test_a_5xx_answer_is_retried_then_reported_unreachable() -> None:
    transport = Recorder((502, b"bad gateway"), (503, b""))
    with pytest.raises(es2.Unreachable):
        client(transport, retries=1).release_profile("x", iccid="8985200000000000001")
    assert len(transport.sent) == 2


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        ((200, b"not json"), "protocol"),
        ((200, b'{"header": {}}'), "protocol"),
        ((403, b"<html>forbidden</html>"), "forbidden"),
        ((200, b'{"header": {"functionExecutionStatus": {"status": "Odd"}}}'), "protocol"),
    ],
)
def test_unreadable_answers_are_clear_errors(answer: tuple[int, bytes], status: str) -> None:
    with pytest.raises(es2.Es2Error) as caught:
        client(Recorder(answer)).release_profile("x", iccid="8985200000000000001")
    assert caught.value.status == status


def test_only_the_es2_functions_leb_uses_can_be_called() -> None:
    with pytest.raises(ValueError, match="not an ES2"):
        client(Recorder()).call("deleteEverything", {}, "x")


def test_requests_transport_uses_the_client_certificate_and_ca_bundle(
    settings: Any, monkeypatch: Any
) -> None:
    # given mutual TLS settings
    settings.SMDP_CLIENT_CERT = "/etc/leb/client.pem"
    settings.SMDP_CLIENT_KEY = "/etc/leb/client.key"
    settings.SMDP_CA_BUNDLE = "/etc/leb/smdp-ca.pem"
    settings.SMDP_CONNECT_TIMEOUT, settings.SMDP_READ_TIMEOUT = 3.0, 9.0
    seen: dict[str, Any] = {}

    class Response:
        status_code = 204
        content = b""

    def fake_post(self: Any, url: str, **kwargs: Any) -> Response:
        seen.update(cert=self.cert, verify=self.verify, timeout=kwargs["timeout"], url=url)
        return Response()

    monkeypatch.setattr("requests.Session.post", fake_post)
    # when a call goes out
    status, _body = es2.requests_transport()("https://smdp.example.com/x", b"{}", {})
    # then the session presents the certificate and checks the SM-DP+ against the bundle
    assert status == 204
    assert seen["cert"] == ("/etc/leb/client.pem", "/etc/leb/client.key")
    assert seen["verify"] == "/etc/leb/smdp-ca.pem"
    assert seen["timeout"] == (3.0, 9.0)


def test_requests_transport_turns_connection_errors_into_unreachable(monkeypatch: Any) -> None:
    import requests

    def boom(self: Any, url: str, **kwargs: Any) -> None:
        raise requests.ConnectionError("refused")

    monkeypatch.setattr("requests.Session.post", boom)
    with pytest.raises(es2.Unreachable):
        es2.requests_transport()("https://smdp.example.com/x", b"{}", {})


def test_without_an_smdp_or_simulator_nothing_can_be_ordered(settings: Any) -> None:
    settings.SMDP_URL = ""
    settings.SMDP_SIMULATOR = False
    with pytest.raises(es2.NotConfigured):
        es2.default_client()
