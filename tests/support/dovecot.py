"""A throw-away Dovecot LMTP server for tests (Debian's dovecot-lmtpd): its own config,
run and state directories in a temp dir, a passwd-file user database, Maildirs in the
temp dir, an LMTP listener on a free loopback port and one on a Unix socket.

As root, mail is stored with the `nobody` account's ids (Dovecot refuses uid 0 for
mail) and Dovecot's own service accounts run its processes; as another user everything
runs as that user. Missing binaries fail loudly: CI installs them.
"""

from __future__ import annotations

import contextlib
import email
import email.message
import email.policy
import grp
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from support.server import free_port, wait_for

DOVECOT = "/usr/sbin/dovecot"
_INSTALL = "install Debian's dovecot-lmtpd (scripts/install-test-deps does)"

_CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = lmtp
listen = 127.0.0.1
ssl = no
default_internal_user = {internal}
default_login_user = {login}
default_internal_group = {group}
first_valid_uid = {uid}
last_valid_uid = {uid}
mail_location = maildir:{root}/mail/%n/Maildir
auth_username_format = %Ln
lmtp_save_to_detail_mailbox = no
recipient_delimiter = +
mail_plugins = $mail_plugins quota
plugin {{
  quota = maildir:User quota
}}
passdb {{
  driver = passwd-file
  args = {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = {root}/passwd
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
  unix_listener lmtp {{
    path = {root}/lmtp.sock
    mode = 0666
  }}
}}
service anvil {{
  chroot =
}}
"""


@dataclass
class Dovecot:
    root: Path
    users: tuple[str, ...]
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.root / "lmtp.sock"

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> Dovecot:
        if not Path(DOVECOT).exists() or not Path("/usr/lib/dovecot/lmtp").exists():
            raise RuntimeError(f"Dovecot LMTP not found: {_INSTALL}")
        self.port = self.port or free_port()
        if os.geteuid() == 0:
            mail_user = pwd.getpwnam("nobody")
            internal, login = "dovecot", "dovenull"
        else:
            mail_user = pwd.getpwuid(os.geteuid())
            internal = login = mail_user.pw_name
        uid, gid = mail_user.pw_uid, mail_user.pw_gid
        for sub in ("run", "state", "mail", "home"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for sub in ("mail", "home"):
            os.chown(self.root / sub, uid, gid)
        self.root.chmod(0o755)
        group = "dovecot" if os.geteuid() == 0 else grp.getgrgid(os.getegid()).gr_name
        # A user named "tiny..." gets a 1 KB quota: Dovecot refuses mail for it after DATA.
        (self.root / "passwd").write_text(
            "".join(
                f"{u}:{{PLAIN}}secret:{uid}:{gid}::{self.root}/home/{u}::"
                + ("userdb_quota_rule=*:storage=1K" if u.startswith("tiny") else "")
                + "\n"
                for u in self.users
            )
        )
        config = _CONFIG.format(
            root=self.root, port=self.port, internal=internal, login=login, group=group, uid=uid
        )
        (self.root / "dovecot.conf").write_text(config)
        self.proc = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.root / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=(self.root / "stderr").open("ab"),
        )
        wait_for(self._ready, 30, f"Dovecot LMTP on {self.port}")
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            stderr = (self.root / "stderr").read_text(errors="replace")
            raise AssertionError(f"dovecot exited: {stderr}\n{self.log()}")
        import socket

        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 1):
            return self.socket.exists()
        return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def maildir(self, user: str) -> Path:
        return self.root / "mail" / user / "Maildir"

    def messages(self, user: str) -> list[email.message.EmailMessage]:
        """What Dovecot stored in the user's INBOX (new/ and cur/), parsed."""
        found = []
        for sub in ("new", "cur"):
            folder = self.maildir(user) / sub
            if folder.is_dir():
                for path in sorted(folder.iterdir()):
                    data = path.read_bytes()
                    parsed = email.message_from_bytes(data, policy=email.policy.default)
                    assert isinstance(parsed, email.message.EmailMessage)
                    found.append(parsed)
        return found

    def wait_messages(
        self, user: str, count: int, timeout: float = 30
    ) -> list[email.message.EmailMessage]:
        wait_for(lambda: len(self.messages(user)) >= count, timeout, f"{count} for {user}")
        return self.messages(user)


@contextlib.contextmanager
def running_dovecot(*users: str, port: int = 0) -> Iterator[Dovecot]:
    root = Path(tempfile.mkdtemp(prefix="posthorn-dovecot-"))
    server = Dovecot(root, users, port)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
