"""The mail-server tools operators run on what rebuild built: ``mcaudit`` (``rebuild audit-mc``,
dangerous settings in a sendmail.mc) and ``smtpprobe`` (``rebuild probe-smtp``: what a server offers
before and after STARTTLS, and whether it relays), built on ``smtpconn`` (capped replies, the whole
probe's deadline), ``tlscheck`` (modern, legacy and pinned TLS contexts; findings on what was
negotiated) and ``smtpchecks`` (relay variants, VRFY/EXPN, STARTTLS command injection)."""
