"""The mail-server tools operators run on what rebuild built: ``mcaudit`` (``rebuild audit-mc``,
dangerous settings in a sendmail.mc) and ``smtpprobe`` (``rebuild probe-smtp``, what a server
offers before and after STARTTLS, and whether it relays)."""
