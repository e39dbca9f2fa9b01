"""Commands for the mail server rebuild builds: audit-mc, probe-smtp."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from rebuild.cli.main import cli


@cli.command("audit-mc")
@click.argument("mc_file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def audit_mc(mc_file: Path, as_json: bool) -> None:
    """Audit a sendmail.mc for open-relay and STARTTLS/AUTH mistakes; exit 1 on errors."""
    from rebuild.mail.mcaudit import ERROR, audit_file, findings_json, format_findings

    findings = audit_file(mc_file)
    click.echo(findings_json(findings) if as_json else format_findings(findings, str(mc_file)))
    if any(f.severity == ERROR for f in findings):
        sys.exit(1)


@cli.command("probe-smtp")
@click.argument("server")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False), help="Check the certificate against these CAs.")
@click.option("--relay-test", nargs=2, metavar="FROM TO", help="Try an unauthenticated relay (MAIL/RCPT only, never DATA).")
@click.option("--source", help="Connect from this local address (e.g. 127.0.0.2: mail from 127.0.0.1 always relays).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=15.0, show_default=True, help="Seconds per step.")
@click.option("--deadline", type=click.FloatRange(min=0.1), default=120.0, show_default=True,
              help="Seconds for the whole probe.")
@click.option("--ehlo", "ehlo_name", default="rebuild-probe.localdomain", show_default=True)
@click.option("--client-cert", type=click.Path(dir_okay=False), help="Present this certificate (PEM) after STARTTLS,"
                                                                    " and try AUTH EXTERNAL when offered.")
@click.option("--client-key", type=click.Path(dir_okay=False), help="The client certificate's key (PEM).")
@click.option("--json", "as_json", is_flag=True)
def probe_smtp(server: str, ca_file: str | None, relay_test: tuple[str, str] | None, source: str | None,
               timeout: float, deadline: float, ehlo_name: str, client_cert: str | None, client_key: str | None,
               as_json: bool) -> None:
    """Probe SERVER (HOST[:PORT]): banner, EHLO, STARTTLS, certificate, AUTH before/after TLS, relaying."""
    from rebuild.mail.smtpprobe import ProbeOptions, format_report, parse_target, probe, report_json

    host, port = parse_target(server)
    report = probe(host, port, ProbeOptions(timeout=timeout, deadline=deadline, ehlo_name=ehlo_name, ca_file=ca_file,
                                            relay=tuple(relay_test) if relay_test else None, source=source,
                                            client_cert=client_cert, client_key=client_key))
    click.echo(report_json(report) if as_json else format_report(report))
    if report.failed:
        sys.exit(1)
