"""Commands for the mail server rebuild builds: audit-mc, probe-smtp."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from rebuild.cli.main import cli
from rebuild.mail.mcaudit import ERROR, audit_file, findings_json, format_findings
from rebuild.mail.smtpconn import parse_target
from rebuild.mail.smtpprobe import ProbeOptions, format_report, probe, report_json


@cli.command("audit-mc")
@click.argument("mc_file", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def audit_mc(mc_file: Path, as_json: bool) -> None:
    """Audit a sendmail.mc for open-relay and STARTTLS/AUTH mistakes; exit 1 on errors."""

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
@click.option("--ports", help="Probe these ports of HOST in turn (e.g. 25,587,465); 465 speaks TLS on connect.")
@click.option("--tls-on-connect", is_flag=True, help="TLS from the first byte (SMTPS), not STARTTLS; the default on 465.")
@click.option("--no-enumerate", is_flag=True, help="Skip the handshakes that list the accepted TLS versions and"
                                                   " cipher classes.")
@click.option("--json", "as_json", is_flag=True)
def probe_smtp(server: str, ca_file: str | None, relay_test: tuple[str, str] | None, source: str | None,
               timeout: float, deadline: float, ehlo_name: str, client_cert: str | None, client_key: str | None,
               ports: str | None, tls_on_connect: bool, no_enumerate: bool, as_json: bool) -> None:
    """Probe SERVER (HOST[:PORT]): banner, EHLO, VRFY/EXPN, STARTTLS (a legacy handshake where the modern one
    fails), the TLS negotiated and accepted, the certificate, AUTH before/after TLS, commands injected before
    STARTTLS, and relaying (nmap's relay variants); exit 1 when a finding is an error."""
    import json

    host, port = parse_target(server)
    targets = [port]
    if ports:
        try:
            targets = [int(p) for p in ports.split(",") if p.strip()]
        except ValueError:
            raise click.UsageError(f"--ports {ports!r}: expected numbers separated by commas, e.g. 25,587,465") from None
        if not targets or any(not 0 < p < 65536 for p in targets):
            raise click.UsageError(f"--ports {ports!r}: ports are 1 to 65535")
    reports = {}
    for each in targets:
        reports[each] = probe(host, each, ProbeOptions(
            timeout=timeout, deadline=deadline, ehlo_name=ehlo_name, ca_file=ca_file,
            relay=tuple(relay_test) if relay_test else None, source=source, client_cert=client_cert,
            client_key=client_key, enumerate_tls=not no_enumerate, implicit_tls=tls_on_connect or each == 465))
    if len(reports) == 1:
        (report,) = reports.values()
        click.echo(report_json(report) if as_json else format_report(report))
    elif as_json:
        click.echo(json.dumps({str(p): json.loads(report_json(r)) for p, r in reports.items()}, indent=2))
    else:
        click.echo("\n\n".join(f"== {host}:{p}\n{format_report(r)}" for p, r in reports.items()))
    if any(r.failed for r in reports.values()):
        sys.exit(1)
