import io
import json
from typing import Any

import pytest

import leb.sms
from leb.sms import SmsError, SmsMessage, get_backend, send_sms
from leb.sms.backends import console, http, locmem


def test_console_is_the_default_backend(settings: Any) -> None:
    # given
    del settings.SMS_BACKEND

    # when
    backend = get_backend()

    # then
    assert isinstance(backend, console.SmsBackend)


def test_console_backend_prints_the_message_to_stdout(
    settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # given
    settings.SMS_BACKEND = "leb.sms.backends.console.SmsBackend"

    # when
    send_sms("+85294000001", "code 123456")

    # then
    out = capsys.readouterr().out
    assert "+85294000001" in out
    assert "code 123456" in out


def test_console_backend_writes_to_a_given_stream() -> None:
    # given
    stream = io.StringIO()

    # when
    send_sms("+85294000001", "hello", backend=console.SmsBackend(stream=stream))

    # then
    assert "hello" in stream.getvalue()


def test_locmem_backend_keeps_messages_in_the_outbox(settings: Any) -> None:
    # given
    settings.SMS_BACKEND = "leb.sms.backends.locmem.SmsBackend"

    # when
    send_sms("+85294000001", "one")
    send_sms("+85294000002", "two")

    # then
    assert leb.sms.outbox == [
        SmsMessage("+85294000001", "one"),
        SmsMessage("+85294000002", "two"),
    ]
    assert isinstance(get_backend(), locmem.SmsBackend)


def test_a_number_that_is_not_e164_is_refused(settings: Any) -> None:
    # given
    settings.SMS_BACKEND = "leb.sms.backends.locmem.SmsBackend"

    # when / then
    with pytest.raises(SmsError):
        send_sms("94000001", "x")
    assert leb.sms.outbox == []


class FakeTransport:
    def __init__(self, status: int = 200, error: Exception | None = None) -> None:
        self.status = status
        self.error = error
        self.requests: list[http.HttpRequest] = []

    def __call__(self, request: http.HttpRequest) -> int:
        self.requests.append(request)
        if self.error:
            raise self.error
        return self.status


def test_http_backend_posts_json_with_a_bearer_token(settings: Any) -> None:
    # given
    settings.SMS_HTTP_URL = "https://sms.example/v1/messages"
    settings.SMS_HTTP_TOKEN = "tok-123"
    settings.SMS_HTTP_TIMEOUT = 7
    settings.SMS_SENDER = "leb"
    transport = FakeTransport(202)

    # when
    send_sms("+85294000001", "code 654321", backend=http.SmsBackend(transport=transport))

    # then
    [request] = transport.requests
    assert request.url == "https://sms.example/v1/messages"
    assert request.headers["Authorization"] == "Bearer tok-123"
    assert request.headers["Content-Type"] == "application/json"
    assert request.timeout == 7
    assert json.loads(request.body) == {
        "to": "+85294000001",
        "text": "code 654321",
        "sender": "leb",
    }


def test_http_backend_is_chosen_by_dotted_path(settings: Any) -> None:
    # given
    settings.SMS_BACKEND = "leb.sms.backends.http.SmsBackend"
    settings.SMS_HTTP_URL = "https://sms.example/v1/messages"
    settings.SMS_HTTP_TOKEN = "tok"
    transport = FakeTransport(200)

    # when
    get_backend(transport=transport).send(SmsMessage("+85294000001", "x"))

    # then
    assert len(transport.requests) == 1


@pytest.mark.parametrize("status", [400, 401, 500, 503])
def test_http_backend_raises_on_an_error_status(status: int) -> None:
    # given
    backend = http.SmsBackend(
        url="https://sms.example/", token="secret-token", transport=FakeTransport(status)
    )

    # when / then
    with pytest.raises(SmsError, match=f"HTTP {status}") as caught:
        send_sms("+85294000001", "code 111111", backend=backend)
    assert "secret-token" not in str(caught.value)
    assert "111111" not in str(caught.value)


@pytest.mark.parametrize("error", [TimeoutError("timed out"), OSError("refused")])
def test_http_backend_raises_when_the_gateway_is_unreachable(error: Exception) -> None:
    # given
    backend = http.SmsBackend(
        url="https://sms.example/", token="t", transport=FakeTransport(error=error)
    )

    # when / then
    with pytest.raises(SmsError, match="unreachable"):
        send_sms("+85294000001", "x", backend=backend)


@pytest.mark.parametrize(
    ("url", "token"), [("", "t"), ("file:///etc/passwd", "t"), ("https://sms.example/", "")]
)
def test_http_backend_refuses_to_send_without_a_usable_configuration(url: str, token: str) -> None:
    # given
    transport = FakeTransport()
    backend = http.SmsBackend(url=url, token=token, transport=transport)

    # when / then
    with pytest.raises(SmsError):
        send_sms("+85294000001", "x", backend=backend)
    assert transport.requests == []


def test_urllib_transport_returns_the_status_of_an_http_error(monkeypatch: Any) -> None:
    # given: urlopen raising HTTPError, as it does for 4xx/5xx answers
    import urllib.error

    def fake_urlopen(*args: Any, **kwargs: Any) -> Any:
        raise urllib.error.HTTPError("https://sms.example/", 502, "Bad Gateway", {}, None)  # type: ignore[arg-type]

    monkeypatch.setattr(http.urllib.request, "urlopen", fake_urlopen)

    # when
    status = http.urllib_transport(http.HttpRequest("https://sms.example/", {}, b"{}", 1))

    # then
    assert status == 502
