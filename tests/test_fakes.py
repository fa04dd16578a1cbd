"""The fakes of tests/fakes/ refuse what the real services refuse, driven by the real clients.

A fake that answers whatever it is sent lets a product bug through: every refusal here is
one the real service makes (wrong token, unknown path, wrong content type, a body missing
what the API requires), in the service's order and error shape, and each is raised by the
official client as that client's own error type. A refused request never uses up a scripted
answer or failure.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import openai
import pytest
import python_http_client.exceptions as sg_errors
import sendgrid
from openai.types.chat import ChatCompletion
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.fakes.openai_server import FakeOpenAIServer, status, valid
from tests.fakes.sendgrid_server import FakeSendGridServer
from tests.fakes.slack_server import FakeSlackServer, slack_error

OPENAI_KEY = "sk-fake-key"
SLACK_TOKEN = "xoxb-fake-token"
SENDGRID_KEY = "SG.fake-key"
CHANNEL = "C0APPROVALS"
MESSAGES: list[Any] = [{"role": "user", "content": "I cannot log in"}]
ANSWER = {"summary": "Locked account"}


# --- OpenAI -------------------------------------------------------------------------------


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(api_key=OPENAI_KEY) as server:
        server.script(valid(ANSWER))
        yield server


def openai_client(server: FakeOpenAIServer, key: str = OPENAI_KEY) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=server.base_url, max_retries=0, timeout=5)


def complete(client: openai.OpenAI, **kwargs: Any) -> str | None:
    args: dict[str, Any] = {"model": "gpt-test", "messages": MESSAGES, **kwargs}
    completion: ChatCompletion = client.chat.completions.create(**args)
    return completion.choices[0].message.content


def test_openai_answers_the_right_key_with_the_scripted_answer(
    openai_server: FakeOpenAIServer,
) -> None:
    assert complete(openai_client(openai_server)) == '{"summary": "Locked account"}'
    assert openai_server.pending == 0


@pytest.mark.parametrize(
    ("key", "headers"),
    [("sk-wrong-key", {}), (OPENAI_KEY, {"Authorization": openai.Omit()})],
    ids=["wrong", "missing"],
)
def test_openai_refuses_a_wrong_or_missing_key(
    openai_server: FakeOpenAIServer, key: str, headers: dict[str, Any]
) -> None:
    with pytest.raises(openai.AuthenticationError) as info:
        complete(openai_client(openai_server, key), extra_headers=headers)
    assert info.value.status_code == 401
    assert info.value.code == "invalid_api_key"
    assert info.value.type == "invalid_request_error"
    assert "authorization" not in openai_server.requests[-1].headers or not headers
    assert openai_server.pending == 1  # the scripted answer is still there


def test_openai_checks_the_key_before_the_path(openai_server: FakeOpenAIServer) -> None:
    with pytest.raises(openai.AuthenticationError):
        openai_client(openai_server, "sk-wrong-key").embeddings.create(model="e", input="x")
    with pytest.raises(openai.NotFoundError) as info:
        openai_client(openai_server).embeddings.create(model="e", input="x")
    assert info.value.type == "invalid_request_error"
    assert openai_server.pending == 1


def test_openai_refuses_a_body_that_is_not_json(openai_server: FakeOpenAIServer) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        complete(openai_client(openai_server), extra_headers={"Content-Type": "text/plain"})
    assert info.value.type == "invalid_request_error"
    assert openai_server.pending == 1


@pytest.mark.parametrize(
    ("kwargs", "param"), [({"model": ""}, None), ({"messages": []}, "messages")]
)
def test_openai_refuses_a_body_without_model_or_messages(
    openai_server: FakeOpenAIServer, kwargs: dict[str, Any], param: str | None
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        complete(openai_client(openai_server), **kwargs)
    assert (info.value.type, info.value.param) == ("invalid_request_error", param)
    assert openai_server.pending == 1


def test_openai_scripted_failure_waits_for_a_valid_request() -> None:
    with FakeOpenAIServer(api_key=OPENAI_KEY) as server:
        server.script(status(429))
        with pytest.raises(openai.AuthenticationError):
            complete(openai_client(server, "sk-wrong-key"))
        with pytest.raises(openai.RateLimitError):
            complete(openai_client(server))


# --- Slack --------------------------------------------------------------------------------


@pytest.fixture
def slack() -> Iterator[FakeSlackServer]:
    with FakeSlackServer(token=SLACK_TOKEN) as server:
        yield server


def slack_client(server: FakeSlackServer, token: str | None = SLACK_TOKEN) -> WebClient:
    return WebClient(token=token, base_url=server.api_url, timeout=5)


def slack_refusal(call: Any) -> str:
    """The ``error`` of the SlackApiError that ``call()`` raises."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # slack_sdk's "missing text" hint
        with pytest.raises(SlackApiError) as info:
            call()
    return str(info.value.response["error"])


@pytest.mark.parametrize(("token", "error"), [(None, "not_authed"), ("xoxb-no", "invalid_auth")])
def test_slack_refuses_a_missing_or_wrong_token_before_scripted_failures(
    slack: FakeSlackServer, token: str | None, error: str
) -> None:
    slack.fail_next(slack_error("ratelimited"))
    client = slack_client(slack, token)
    assert slack_refusal(lambda: client.chat_postMessage(channel=CHANNEL, text="hi")) == error
    good = slack_client(slack)
    assert slack_refusal(lambda: good.chat_postMessage(channel=CHANNEL, text="hi")) == (
        "ratelimited"
    )
    assert good.chat_postMessage(channel=CHANNEL, text="hi")["ok"]


def test_slack_takes_the_token_from_a_form_body(slack: FakeSlackServer) -> None:
    client = slack_client(slack, None)
    form = {"channel": CHANNEL, "text": "hi"}
    sent = client.api_call("chat.postMessage", data={**form, "token": SLACK_TOKEN})
    assert sent["ok"]
    wrong = {**form, "token": "xoxb-no"}
    assert slack_refusal(lambda: client.api_call("chat.postMessage", data=wrong)) == (
        "invalid_auth"
    )


def test_slack_refuses_an_unknown_method_after_auth(slack: FakeSlackServer) -> None:
    assert slack_refusal(lambda: slack_client(slack, "xoxb-no").api_call("chat.nope")) == (
        "invalid_auth"
    )
    assert slack_refusal(lambda: slack_client(slack).api_call("chat.nope")) == "unknown_method"


def test_slack_post_needs_a_channel_and_text(slack: FakeSlackServer) -> None:
    slack.fail_next(slack_error("ratelimited"))
    client = slack_client(slack)
    assert slack_refusal(lambda: client.chat_postMessage(channel="", text="hi")) == (
        "channel_not_found"
    )
    assert slack_refusal(lambda: client.chat_postMessage(channel=CHANNEL)) == "no_text"
    assert slack_refusal(lambda: client.chat_postMessage(channel=CHANNEL, text="hi")) == (
        "ratelimited"
    )


def test_slack_update_needs_a_message_posted_in_that_channel(slack: FakeSlackServer) -> None:
    client = slack_client(slack)
    ts = str(client.chat_postMessage(channel=CHANNEL, text="pending")["ts"])
    assert slack_refusal(lambda: client.chat_update(channel=CHANNEL, ts="1.2", text="x")) == (
        "message_not_found"
    )
    assert slack_refusal(lambda: client.chat_update(channel="C0OTHER", ts=ts, text="x")) == (
        "message_not_found"
    )
    assert client.chat_update(channel=CHANNEL, ts=ts, text="approved")["ts"] == ts


def test_slack_users_info_answers_members_after_the_token_check(slack: FakeSlackServer) -> None:
    """A GET, as slack_sdk sends it: the token first, then the member or ``user_not_found``,
    then a scripted failure."""
    slack.add_member("U0ANA", "ana@example.com")
    assert slack_refusal(lambda: slack_client(slack, "xoxb-no").users_info(user="U0ANA")) == (
        "invalid_auth"
    )
    client = slack_client(slack)
    assert slack_refusal(lambda: client.users_info(user="U0NOBODY")) == "user_not_found"
    answer = client.users_info(user="U0ANA")
    assert answer["user"]["id"] == "U0ANA"
    assert answer["user"]["profile"]["email"] == "ana@example.com"
    assert slack.calls_to("users.info")[-1].body == {"user": "U0ANA"}
    slack.fail_next(slack_error("ratelimited"))
    assert slack_refusal(lambda: client.users_info(user="U0ANA")) == "ratelimited"


# --- SendGrid -----------------------------------------------------------------------------


def mail(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "personalizations": [{"to": [{"email": "ana@example.com"}]}],
        "from": {"email": "support@kruxt.app"},
        "subject": "Approval needed",
        "content": [{"type": "text/plain", "value": "Please decide."}],
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


@pytest.fixture
def sendgrid_server() -> Iterator[FakeSendGridServer]:
    with FakeSendGridServer(api_key=SENDGRID_KEY) as server:
        yield server


def sendgrid_client(server: FakeSendGridServer, key: str = SENDGRID_KEY) -> Any:
    return sendgrid.SendGridAPIClient(api_key=key, host=server.base_url)


@pytest.mark.parametrize("key", ["SG.other-key", ""])
def test_sendgrid_accepts_only_the_configured_key(
    sendgrid_server: FakeSendGridServer, key: str
) -> None:
    sendgrid_server.fail(429)
    with pytest.raises(sg_errors.UnauthorizedError) as info:
        sendgrid_client(sendgrid_server, key).send(mail())
    [error] = info.value.to_dict["errors"]
    assert error["message"] and (error["field"], error["help"]) == (None, None)
    with pytest.raises(sg_errors.TooManyRequestsError):
        sendgrid_client(sendgrid_server).send(mail())  # the scripted failure was kept
    assert sendgrid_client(sendgrid_server).send(mail()).status_code == 202
    assert sendgrid_server.sent == [mail()]


def test_sendgrid_checks_the_key_before_the_path(sendgrid_server: FakeSendGridServer) -> None:
    with pytest.raises(sg_errors.UnauthorizedError):
        sendgrid_client(sendgrid_server, "SG.other").client.mail.nope.post(request_body=mail())
    with pytest.raises(sg_errors.NotFoundError):
        sendgrid_client(sendgrid_server).client.mail.nope.post(request_body=mail())


def test_sendgrid_refuses_a_body_that_is_not_json(sendgrid_server: FakeSendGridServer) -> None:
    with pytest.raises(sg_errors.UnsupportedMediaTypeError):
        sendgrid_client(sendgrid_server).client.mail.send.post(
            request_body="subject=hi", request_headers={"Content-Type": "text/plain"}
        )
    assert sendgrid_server.sent == []


@pytest.mark.parametrize(
    ("missing", "field"),
    [
        ("personalizations", "personalizations"),
        ("from", "from"),
        ("subject", "subject"),
        ("content", "content"),
    ],
)
def test_sendgrid_refuses_a_mail_missing_a_required_part(
    sendgrid_server: FakeSendGridServer, missing: str, field: str
) -> None:
    sendgrid_server.fail(503)
    with pytest.raises(sg_errors.BadRequestsError) as info:
        sendgrid_client(sendgrid_server).send(mail(**{missing: None}))
    assert info.value.to_dict["errors"][0]["field"] == field
    with pytest.raises(sg_errors.ServiceUnavailableError):
        sendgrid_client(sendgrid_server).send(mail())
