"""The user agent: compose, submit and read mail (`posthorn send`, `read`, `sendmail`).

Owns nothing itself. `compose.py` and `view.py` are pure (messages in, values out);
`mailboxes.py` opens Maildir and mbox with the stdlib `mailbox` module; `submit.py`
drives the sans-I/O SMTP client over a socket; `sendmail.py` prepares what the sendmail
interface reads and `local.py` hands it to intake; `shell.py` is the only module that
prints or prompts.
"""
