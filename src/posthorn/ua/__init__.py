"""The user agent: compose, submit and read mail (`posthorn send`, `read`, `sendmail`).

Owns nothing itself. `compose.py`, `view.py`, `render.py`, `sendmail_options.py` and
`sendmail.py` are pure (values in, values out); `mailboxes.py` opens Maildir and mbox
with the stdlib `mailbox` module; `wire.py`, `submit.py` and `transaction.py` drive the
sans-I/O SMTP client over a socket; `local.py` hands local mail to intake; `shell.py`
runs the commands; `terminal.py` is the only module that prompts or prints.
"""
