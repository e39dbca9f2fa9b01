"""rebuild: rebuild source RPMs for an older release inside a container.

The packages, in the order a build meets them:

- ``config``: what the user writes, validated into frozen dataclasses: recipes, targets,
  floors manifests, the YAML schema helpers.
- ``pipeline``: the stages of a build: ``fetch`` -> ``spec`` -> ``floors`` -> ``build``
  (``steps`` in the container, ``workdir`` for its folders, ``batch`` for several) ->
  ``checks`` -> ``publish``; ``result`` is the typed result folder every stage shares,
  ``buildindex`` the no-op rebuild index, ``plan`` the CI matrix.
- ``roots``: making build roots: ``images`` (debootstrap), ``treeimage`` and ``rpmtree``
  (from an RPM tree), ``unpack`` (payloads streamed safely), ``pins``.
- ``systems``: one module per outside system: ``engine`` (Docker), ``rpmfile`` (RPM headers
  and payloads), ``evr`` (rpm's version order), ``urls`` and ``download`` (HTTP).
- ``mail``: the mail-server tools: ``mcaudit`` (audit-mc), ``smtpprobe`` (probe-smtp).
- ``cli``: the command line on top. ``errors``, ``log``, ``files``, ``hostcmd`` and
  ``settings`` are the small shared pieces.
"""

__version__ = "0.2.0"
