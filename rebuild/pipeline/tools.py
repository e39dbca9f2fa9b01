"""What a build root's rpm is and which tools its macros name: the probe that runs with the SRPM install
(``steps.install_srpm``), and what follows from it: the build command, rpm's version, the tool macros
pointed at this root's own tools, and the macros that make rpm >= 4.14 builds reproducible.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

# the tools rpm's build scripts run by macro; an rpm configured on another system may name paths this root
# lacks (the rpm 4.0.4 here names /bin/make and /usr/bin/mkdir, which an RH 7.3 root has as /usr/bin/make
# and /bin/mkdir)
TOOL_MACROS = ("__bzip2", "__cat", "__chgrp", "__chmod", "__chown", "__cp", "__cpio", "__file", "__grep", "__gzip",
               "__id", "__install", "__make", "__mkdir", "__mkdir_p", "__mv", "__patch", "__rm", "__sed", "__tar",
               "__unzip", "__ld", "__nm", "__objcopy", "__objdump", "__strip", "__perl", "__python")
# one rpm --eval for every macro (a line each), not one rpm process per macro
PROBE = """
echo "rebuild-probe rpm $(rpm --version 2>/dev/null)"
command -v rpmbuild >/dev/null 2>&1 && echo "rebuild-probe command rpmbuild"
exprs=""
for m in $TOOLS; do exprs="$exprs%{$m}
"; done
names="$TOOLS "
rpm --eval "$exprs" 2>/dev/null | while IFS= read -r v; do
  m=${names%% *}; names=${names#* }
  [ -n "$m" ] || break
  set -- $v
  case "$1" in /*) [ -x "$1" ] && continue
    found=$(command -v "$(basename "$1")" 2>/dev/null)
    echo "rebuild-probe missing $m ${found:--} $v";;
  esac
done
"""


# rpm 4.14 and later: the build time from the spec's %changelog (SOURCE_DATE_EPOCH), file times clamped to
# it, and one build host name, so that two builds of the same inputs make the same packages
REPRODUCIBLE_MACROS = ("source_date_epoch_from_changelog 1", "use_source_date_epoch_as_buildtime 1",
                       "clamp_mtime_to_source_date_epoch 1", "_buildhost rebuild.localdomain")


@dataclass(frozen=True)
class Tools:
    command: str                       # rpmbuild, or rpm (rpm 4.0.x without rpm-build's alias)
    redirected: tuple[str, ...] = ()   # "%__mkdir /usr/bin/mkdir -> /bin/mkdir"
    rpm_version: str | None = None     # "4.18.0", as `rpm --version` says
    macros: tuple[str, ...] = ()       # defined on rpmbuild's command line (REPRODUCIBLE_MACROS)


def rpm_version_tuple(version: str | None) -> tuple[int, ...]:
    """"4.0.4" -> (4, 0, 4); unknown -> ()."""
    return tuple(int(part) for part in re.findall(r"\d+", version or "")[:3])


def knows_source_date_epoch(version: str | None) -> bool:
    return rpm_version_tuple(version) >= (4, 14)


def tools_from_probe(step, lines: list[list[str]], source_date_epoch: bool) -> Tools:
    """What the probe found. Each tool macro naming a missing path is pointed at the tool of that name the
    root has, in the build user's ~/.rpmmacros (rpm 4.0.x reads its macro files again for each build
    target, so a --define would be overridden), and said so."""
    found_rpmbuild = any(parts[1:3] == ["command", "rpmbuild"] for parts in lines)
    version = next((parts[-1] for parts in lines if parts[1] == "rpm" and len(parts) > 2), None)
    command = step.target.build_command if step.target.build_command != "auto" else \
        ("rpmbuild" if found_rpmbuild else "rpm")
    macros, redirected = [], []
    for parts in lines:
        if len(parts) >= 5 and parts[1] == "missing" and parts[3] != "-":
            macro, found, configured, rest = parts[2], parts[3], parts[4], parts[5:]
            macros.append(f"%{' '.join([macro, found, *rest])}\n")
            redirected.append(f"%{macro} {configured} -> {found}")
    if redirected:
        rc = step.work / ".rpmmacros"  # HOME is the build tree
        rc.write_text("# written by rebuild: rpm's tool macros pointed at this root's tools\n" + "".join(macros))
        if os.geteuid() == 0:
            os.chown(rc, step.target.uid, step.target.uid)
        step.copy_in(".rpmmacros")
        step.log.info(f"    rpm's tool macros name paths this root lacks; ~/.rpmmacros points them at its own:"
                      f" {', '.join(redirected)}")
    macros = REPRODUCIBLE_MACROS if source_date_epoch and knows_source_date_epoch(version) else ()
    return Tools(command, tuple(redirected), version, macros)


