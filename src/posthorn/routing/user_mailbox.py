"""Where a local user's mail is put: the format of the user's mailbox and its path.

Owns: the two rules that place a local user's mail, each in one function so that the
router (`Router.mailbox_route`), the local delivery agent (`LocalDelivery.path_for`) and
`posthorn read --user` cannot disagree: the format (local.mailbox_format, overridden per
user by local.mailbox_formats) and the path of a Maildir or mbox route (the local.maildir
and local.mbox templates, with {data_dir} and {user} replaced). Pure: no I/O, and light
to import (`posthorn read` starts in well under a second). Does not own which address
names which mailbox (`router.py`) or writing the mailbox (`delivery/`).

Raises `KeyError`, `IndexError` or `ValueError` from a template with a placeholder other
than {data_dir} and {user} (`posthorn config check` reports those).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from posthorn.config import Config
from posthorn.routing.routes import Mailbox, Mbox

__all__ = ["mailbox_path", "mailbox_route", "user_mailbox"]


def mailbox_route(user: str, default_format: str, formats: Mapping[str, str]) -> Mailbox | Mbox:
    """The route to `user`'s mailbox: mbox or Maildir. `formats` is keyed by the lower-case
    user name, as the router names mailboxes."""
    if formats.get(user, default_format) == "mbox":
        return Mbox(user)
    return Mailbox(user)


def mailbox_path(
    route: Mailbox | Mbox, *, maildir_template: str, mbox_template: str, data_dir: str
) -> Path:
    """The mbox file or Maildir directory that `route` delivers into."""
    template = mbox_template if isinstance(route, Mbox) else maildir_template
    return Path(template.format(data_dir=data_dir, user=route.user))


def user_mailbox(config: Config, user: str) -> Path:
    """Where local delivery puts the mail of the local mailbox `user` under `config`."""
    local = config.local
    formats = {name.lower(): fmt for name, fmt in local.mailbox_formats.items()}
    route = mailbox_route(user.lower(), local.mailbox_format, formats)
    return mailbox_path(
        route,
        maildir_template=local.maildir,
        mbox_template=local.mbox,
        data_dir=config.server.data_dir,
    )
