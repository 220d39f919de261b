"""`posthorn read` end to end: mail delivered by a real server, read by a subprocess."""

from __future__ import annotations

import email
import mailbox
import subprocess
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from support.cli import run
from support.server import Server, env, posthorn_cmd, wait_for

# RFC 2047 section 8's example, as the seed lecture quotes it.
RFC2047 = (
    b"From: =?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>\r\n"
    b"To: =?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>\r\n"
    b"CC: =?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>\r\n"
    b"Subject: =?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=\r\n"
    b"    =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=\r\n"
    b"Date: Mon, 19 Jul 1993 12:47:34 -0700\r\n"
    b"\r\n"
    b"The body.\r\n"
)


def _deliver(server: Server, user: str, content: bytes, count: int = 1) -> list[Path]:
    with server.smtp() as client:
        client.sendmail("moore@cs.utk.edu", [f"{user}@localhost"], content)
    return server.wait_delivered(user, count)


def test_listing_decodes_the_rfc2047_example(server: Server) -> None:
    _deliver(server, "keld", RFC2047)
    result = run(server, "read", "--user", "keld")
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert line.startswith("N    1 Mon Jul 19 19:47  Keith Moore ")
    assert line.endswith("  If you can read this you understand the example.")


def test_showing_a_message_decodes_it_and_marks_it_seen(server: Server) -> None:
    (path,) = _deliver(server, "keld", RFC2047)
    result = run(server, "read", "--user", "keld", "1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "Message 1:",
        "Date: Mon, 19 Jul 1993 12:47:34 -0700",
        "From: Keith Moore <moore@cs.utk.edu>",
        "To: Keld Jørn Simonsen <keld@dkuug.dk>",
        "Cc: André Pirard <PIRARD@vm1.ulg.ac.be>",
        "Subject: If you can read this you understand the example.",
        "",
        "The body.",
    ]
    # Maildir: read mail moves to cur/ with the S flag in its info; the file is the same.
    assert not path.exists()
    seen = server.maildir("keld") / "cur" / f"{path.name}:2,S"
    assert seen.exists()
    listing = run(server, "read", "--user", "keld").stdout
    assert listing.startswith("     1 Mon Jul 19")  # no N: it has been read
    assert run(server, "read", "--user", "keld", "--json").stdout.count('"flags": "S"') == 1


def test_text_is_written_in_the_terminals_charset(server: Server) -> None:
    _deliver(server, "keld", RFC2047)
    result = run(
        server,
        "read", "--user", "keld", "1",
        extra_env={"PYTHONIOENCODING": "iso-8859-1"},
        encoding="iso-8859-1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "To: Keld Jørn Simonsen <keld@dkuug.dk>" in result.stdout
    # In ASCII, what cannot be shown becomes '?' rather than a traceback.
    ascii_result = run(
        server, "read", "--user", "keld", "1", extra_env={"PYTHONIOENCODING": "ascii"}
    )
    assert ascii_result.returncode == 0, ascii_result.stderr
    assert "To: Keld J?rn Simonsen <keld@dkuug.dk>" in ascii_result.stdout


def _nested_message() -> tuple[bytes, bytes]:
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 4
    inner = EmailMessage()
    inner["From"] = "someone@example.org"
    inner["Subject"] = "original"
    inner.set_content("the forwarded text\n")
    message = EmailMessage()
    message["From"] = "=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>"
    message["To"] = "bob@localhost"
    message["Subject"] = "=?ISO-8859-1?Q?Gr=FC=DFe?="
    message.set_content("Grüße aus Kopenhagen!\nZweite Zeile.\n", cte="quoted-printable")
    message.add_alternative("<p>Gr&uuml;&szlig;e</p>", subtype="html", cte="base64")
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename="../report.pdf")
    message.add_attachment(inner)
    return message.as_bytes(policy=policy.SMTP), pdf


def test_nested_multipart_alternative_read_back(server: Server, tmp_path: Path) -> None:
    content, pdf = _nested_message()
    _deliver(server, "bob", content)
    save = tmp_path / "saved"
    result = run(server, "read", "--user", "bob", "1", "--save", str(save))
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert "From: Keld Jørn Simonsen <keld@dkuug.dk>" in out
    assert "Subject: Grüße" in out
    body = out.index("Grüße aus Kopenhagen!")
    assert out[body + 1] == "Zweite Zeile."
    assert "[-- alternative text/html not shown --]" in out
    assert "[-- attachment 1: ../report.pdf (application/pdf, 1.0K) --]" in out
    assert any(line.startswith("[-- attachment 2: part-2.eml (message/rfc822,") for line in out)
    # Saved under a safe name inside DIR, byte for byte.
    assert (save / "report.pdf").read_bytes() == pdf
    forwarded = email.message_from_bytes((save / "part-2.eml").read_bytes())
    assert forwarded["Subject"] == "original"
    assert f"saved {save / 'report.pdf'}" in out


def test_sent_with_posthorn_send_reads_back_the_same(server: Server, tmp_path: Path) -> None:
    attachment = tmp_path / "résumé.txt"
    attachment.write_bytes("caf\u00e9\n".encode("latin-1"))
    sent = run(
        server,
        "send", "--server", f"127.0.0.1:{server.port}", "-r", "André Pirard <andre@localhost>",
        "-s", "If you can read this you understand the example, Jørn", "-a", str(attachment),
        "Keld Jørn Simonsen <keld@localhost>",
        stdin="Hej Jørn, ça va?\n",
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    (path,) = server.wait_delivered("keld")
    head = path.read_bytes().split(b"\n\n", 1)[0]
    assert head.isascii()  # everything non-ASCII went out as RFC 2047 encoded words
    shown = run(server, "read", "--user", "keld", "1", "--save", str(tmp_path / "out"))
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "From: André Pirard <andre@localhost>" in lines
    assert "To: Keld Jørn Simonsen <keld@localhost>" in lines
    assert "Subject: If you can read this you understand the example, Jørn" in lines
    assert "Hej Jørn, ça va?" in lines
    assert "[-- attachment 1: résumé.txt (text/plain, 5) --]" in lines
    assert (tmp_path / "out" / "résumé.txt").read_bytes() == "caf\u00e9\n".encode("latin-1")


def test_mbox_is_read_and_marked_seen(server: Server, tmp_path: Path) -> None:
    path = tmp_path / "inbox"
    box = mailbox.mbox(path)
    for subject in ("first", "=?utf-8?q?zw=C3=B6lf?="):
        box.add(
            f"From: a@x.test\nSubject: {subject}\nDate: Tue, 20 Jul 1993 10:00:00 +0000\n\nb\n"
        )
    box.flush()
    box.close()
    listing = run(server, "read", "--mailbox", str(path)).stdout.splitlines()
    assert [line[:6] for line in listing] == ["N    1", "N    2"]
    assert listing[1].endswith("  zwölf")
    assert run(server, "read", "--mailbox", str(path), "2").returncode == 0
    statuses = [m["Status"] for m in mailbox.mbox(path)]
    assert statuses == [None, "RO"]
    assert run(server, "read", "--mailbox", str(path)).stdout.splitlines()[1][:6] == "     2"


def test_empty_and_missing_mailboxes(server: Server, tmp_path: Path) -> None:
    nobody = run(server, "read", "--user", "nobody")
    assert (nobody.returncode, nobody.stdout) == (0, "No mail for nobody.\n")
    missing = run(server, "read", "--mailbox", str(tmp_path / "nope"))
    assert missing.returncode == 66
    assert "not a Maildir or mbox" in missing.stderr
    _deliver(server, "bob", b"Subject: one\r\n\r\nx\r\n")
    out_of_range = run(server, "read", "--user", "bob", "2")
    assert out_of_range.returncode == 66
    assert "no message 2 (the mailbox holds 1)" in out_of_range.stderr


def test_any_maildir_with_flags_kept(server: Server, tmp_path: Path) -> None:
    # A Maildir written by another program: names without ',S=', a flagged message in
    # cur/ that has not been read yet.
    box = mailbox.Maildir(tmp_path / "Maildir")
    flagged = mailbox.MaildirMessage(b"Subject: flagged\n\nx\n")
    flagged.set_subdir("cur")
    flagged.set_flags("F")
    key = box.add(flagged)
    listing = run(server, "read", "--mailbox", str(tmp_path / "Maildir"))
    (line,) = listing.stdout.splitlines()
    assert line.startswith("UF   1 ?")  # unread (not new), flagged; no Date header
    assert line.endswith("    20  flagged")  # the size from the file itself
    assert run(server, "read", "--mailbox", str(tmp_path / "Maildir"), "1").returncode == 0
    assert box.get_message(key).get_flags() == "FS"


# One user on mbox, in a spool of its own, while the others keep their Maildirs.
ONE_ON_MBOX = 'mailbox_formats = { carol = "mbox" }\nmbox = "{data_dir}/spool/{user}"'


@pytest.mark.parametrize(
    ("local", "user", "spool"),
    [
        (ONE_ON_MBOX, "carol", "spool/carol"),
        ('mailbox_format = "mbox"', "carol", "mail/carol/mbox"),  # everyone, default place
    ],
)
def test_user_on_mbox_reads_where_local_delivery_put_it(
    make_server: Callable[..., Server], local: str, user: str, spool: str
) -> None:
    server = make_server(f"[local]\n{local}\n")
    with server.smtp() as client:
        client.sendmail("moore@cs.utk.edu", [f"{user}@localhost"], RFC2047)
    path = server.data_dir / spool
    wait_for(lambda: path.is_file() and len(mailbox.mbox(path)) == 1, what=f"{user}'s mbox")
    listing = run(server, "read", "--user", user.upper())  # user names are caseless
    assert listing.returncode == 0, listing.stderr
    (line,) = listing.stdout.splitlines()
    assert line.startswith("N    1 Mon Jul 19 19:47  Keith Moore ")
    assert line.endswith("  If you can read this you understand the example.")
    shown = run(server, "read", "--user", user, "1")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert "To: Keld Jørn Simonsen <keld@dkuug.dk>" in lines
    assert lines[-1] == "The body."
    # Read in place: marked seen in the mbox (Status: RO), no Maildir made or looked for.
    assert [m["Status"] for m in mailbox.mbox(path)] == ["RO"]
    assert not (server.data_dir / "mail" / user / "Maildir").exists()
    assert run(server, "read", "--user", user).stdout.startswith("     1 Mon Jul 19")
    if local == ONE_ON_MBOX:  # and a user on the default format still gets Maildir
        with server.smtp() as client:
            client.sendmail("moore@cs.utk.edu", ["dave@localhost"], RFC2047)
        server.wait_delivered("dave")
        dave = run(server, "read", "--user", "dave").stdout.splitlines()
        assert [entry[:6] for entry in dave] == ["N    1"]


def test_mail_on_a_mailbox_server_is_not_here(tmp_path: Path) -> None:
    config = tmp_path / "posthorn.toml"
    config.write_text('[server]\nhostname = "mx.test"\n[local]\nmailbox = "lmtp:127.0.0.1:24"\n')
    cmd = posthorn_cmd(
        "read", "--user", "bob", "--config", str(config), "--data-dir", str(tmp_path / "data")
    )
    result = subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=60)
    assert result.returncode == 69  # EX_UNAVAILABLE
    assert "bob's mail is delivered to lmtp:127.0.0.1:24 (local.mailbox)" in result.stderr


# RFC 2047 section 8: the Subject in base64 encoded words, split over two charsets.
RFC2047_SUBJECT = (
    "=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?= "
    "=?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?="
)


def test_rfc2047_base64_subject_sent_and_read_back(server: Server) -> None:
    # The RFC's encoded Subject, typed (or pasted) into `posthorn send`: the email package
    # decodes it into the text it stands for, which, being ASCII, then goes out plain.
    sent = run(
        server, "send", "--server", f"127.0.0.1:{server.port}", "-s", RFC2047_SUBJECT,
        "keld@localhost", stdin="The body.\n",
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    (first,) = server.wait_delivered("keld")
    head = first.read_bytes().split(b"\n\n", 1)[0]
    assert b"\nSubject: If you can read this you understand the example.\n" in head
    # Text that needs it goes out as base64 encoded words, as the RFC's example does.
    sent = run(
        server, "send", "--server", f"127.0.0.1:{server.port}", "-s", "Grüße aus Köln",
        "keld@localhost", stdin="Zweite.\n",
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    (second,) = set(server.wait_delivered("keld", 2)) - {first}
    head = second.read_bytes().split(b"\n\n", 1)[0]
    assert b"\nSubject: =?utf-8?b?R3LDvMOfZSBhdXMgS8O2bG4=?=\n" in head
    listing = run(server, "read", "--user", "keld")
    assert listing.returncode == 0, listing.stderr
    listed = {line[1:6].strip(): line.rsplit("  ", 1)[1] for line in listing.stdout.splitlines()}
    bodies = {
        "If you can read this you understand the example.": "The body.",
        "Grüße aus Köln": "Zweite.",
    }
    assert sorted(listed.values()) == sorted(bodies)
    for number, subject in listed.items():
        shown = run(server, "read", "--user", "keld", number)
        assert shown.returncode == 0, shown.stderr
        lines = shown.stdout.splitlines()
        assert f"Subject: {subject}" in lines
        assert lines[-1] == bodies[subject]
