"""The sendmail command line and message preparation (ua/sendmail_options.py, sendmail.py)."""

from __future__ import annotations

import email
from email import policy

import pytest

from posthorn.address import Address
from posthorn.envelope import Envelope
from posthorn.ua.sendmail import SendmailError, prepare, remove_fields
from posthorn.ua.sendmail_options import Mode, SendmailArgs, UsageError, parse


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["bob"], SendmailArgs(recipients=("bob",))),
        (["-t", "-i"], SendmailArgs(extract=True, ignore_dots=True)),
        (["-oi", "-t"], SendmailArgs(extract=True, ignore_dots=True)),  # cron's form
        (["-ti"], SendmailArgs(extract=True, ignore_dots=True)),
        (["-f", "a@x.test", "b"], SendmailArgs(sender="a@x.test", recipients=("b",))),
        (["-fa@x.test"], SendmailArgs(sender="a@x.test")),
        (["-r", "<>"], SendmailArgs(sender="<>")),
        (["-F", "Alice A", "-Fx"], SendmailArgs(full_name="x")),
        (["-bs"], SendmailArgs(mode=Mode.SMTP)),
        (["-bp"], SendmailArgs(mode=Mode.PRINT_QUEUE)),
        (["-bm", "b"], SendmailArgs(recipients=("b",))),
        (["-q"], SendmailArgs(mode=Mode.FLUSH)),
        (["-qRexample.org"], SendmailArgs(mode=Mode.FLUSH, flush_domain="example.org")),
        (["-N", "success,delay", "-R", "hdrs", "-V", "x1", "-B", "8BITMIME"],
         SendmailArgs(notify="success,delay", ret="hdrs", envid="x1", body="8BITMIME")),
        (["-C", "/etc/p.toml"], SendmailArgs(config="/etc/p.toml")),
        (["b", "--config", "/c", "--data-dir=/d"],
         SendmailArgs(recipients=("b",), config="/c", data_dir="/d")),
        (["--", "-weird"], SendmailArgs(recipients=("-weird",))),
        (["--help"], SendmailArgs(mode=Mode.HELP)),
    ],
)  # fmt: skip
def test_parse(words: list[str], expected: SendmailArgs) -> None:
    assert parse(words) == expected


def test_ignored_options_are_noted() -> None:
    args = parse(["-odi", "-oem", "-L", "cron", "-q30m", "b"])
    assert args.recipients == ("b",)
    assert args.notes == (
        "-odi ignored",
        "-oem ignored",
        "-L ignored",
        "-q30m: the interval is the server's; running the queue once now",
    )


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["-Z"], "unknown option -Z"),
        (["-f"], "option -f needs a value"),
        (["-bd"], "posthorn serve"),
        (["-bx"], "unknown mode"),
        (["--config"], "--config needs a value"),
    ],
)
def test_parse_errors(words: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse(words)


def _prepare(data: bytes, *words: str) -> tuple[list[str], bytes, Envelope]:
    prepared = prepare(data, parse(list(words)), login="root", hostname="mx.test")
    env = prepared.envelope
    return [str(r.address) for r in env.recipients], prepared.content, env


def test_lone_dot_ends_input_unless_i() -> None:
    data = b"Subject: x\n\nline\n.\nafter\n"
    _, content, _ = _prepare(data, "bob")
    assert content == b"From: root@mx.test\r\nSubject: x\r\n\r\nline\r\n"
    _, content, _ = _prepare(data, "-i", "bob")
    assert content.endswith(b"line\r\n.\r\nafter\r\n")
    _, content, _ = _prepare(b"Subject: x\n\nlast line\n.", "bob")
    assert content.endswith(b"last line\r\n")


def test_extract_recipients_and_remove_bcc() -> None:
    data = (
        b"From: Alice <alice@example.org>\r\n"
        b"To: bob@localhost, Carol <carol>\r\n"
        b"Bcc: secret@localhost,\r\n"
        b"  hidden@localhost\r\n"
        b"Subject: s\r\n"
        b"X-Keep:  exactly   as is\r\n"
        b"\r\n"
        b"Bcc: in the body stays\r\n"
    )
    recipients, content, _ = _prepare(data, "-t", "extra@localhost")
    assert recipients == [
        "extra@localhost",
        "bob@localhost",
        "carol@mx.test",
        "secret@localhost",
        "hidden@localhost",
    ]
    assert content == (
        b"From: Alice <alice@example.org>\r\n"
        b"To: bob@localhost, Carol <carol>\r\n"
        b"Subject: s\r\n"
        b"X-Keep:  exactly   as is\r\n"
        b"\r\n"
        b"Bcc: in the body stays\r\n"
    )


def test_resent_fields_win_when_present() -> None:
    data = b"To: old@x.test\nResent-To: new@x.test\nResent-Bcc: quiet@x.test\n\nb\n"
    recipients, content, _ = _prepare(data, "-t")
    assert recipients == ["new@x.test", "quiet@x.test"]
    assert b"quiet" not in content


def test_group_syntax_names_no_one() -> None:
    recipients, _, _ = _prepare(b"To: undisclosed-recipients:;\nBcc: b@x.test\n\nb\n", "-t")
    assert recipients == ["b@x.test"]


def test_from_added_with_full_name_encoded() -> None:
    _, content, env = _prepare(b"Subject: s\n\nb\n", "-F", "Jørn Root", "-f", "jr", "bob")
    assert content.startswith(b"From: =?utf-8?q?J=C3=B8rn_Root?= <jr@mx.test>\r\nSubject: s")
    parsed = email.message_from_bytes(content, policy=policy.default)
    assert str(parsed["From"]) == "Jørn Root <jr@mx.test>"
    assert env.sender == Address("jr", "mx.test")


def test_message_without_header_section_keeps_its_body() -> None:
    _, content, _ = _prepare(b"just a line\n", "bob")
    assert content == b"From: root@mx.test\r\n\r\njust a line\r\n"


def test_null_sender_and_dsn_parameters() -> None:
    _, _, env = _prepare(
        b"From: x@y.test\n\nb\n", "-f", "<>", "-N", "failure,delay", "-R", "hdrs", "-V", "e1",
        "bob",
    )  # fmt: skip
    assert env.sender is None
    assert env.recipients[0].notify == frozenset({"FAILURE", "DELAY"})
    assert (env.ret, env.envid, env.protocol) == ("HDRS", "e1", "")


def test_eight_bit_content_is_declared() -> None:
    _, _, env = _prepare("Subject: Grüße\n\nJørn\n".encode(), "bob")
    assert env.body == "8BITMIME"
    assert env.smtputf8


@pytest.mark.parametrize(
    ("words", "message", "code"),
    [
        ((), "no recipient addresses found", 64),
        (("-t",), "no recipient addresses found", 64),
        (("bad address@x",), "invalid local part", 65),
        (("-N", "sometimes", "b"), "-N sometimes", 64),
        (("-R", "most", "b"), "-R most", 64),
    ],
)
def test_prepare_errors(words: tuple[str, ...], message: str, code: int) -> None:
    with pytest.raises(SendmailError, match=message) as caught:
        _prepare(b"Subject: x\n\nb\n", *words)
    assert caught.value.code == code


def test_remove_fields_leaves_other_bytes_alone() -> None:
    content = b"A: 1\r\nBCC: x\r\n\ty\r\nB:  2 \r\n\r\nBcc: body\r\n"
    assert remove_fields(content, {"bcc"}) == b"A: 1\r\nB:  2 \r\n\r\nBcc: body\r\n"
    assert remove_fields(b"no header\r\n", {"bcc"}) == b"no header\r\n"
