"""rebuild: rebuild source RPMs for an older release inside a container.

The pipeline, one module per stage: ``recipe`` (what to build), ``targets``
(where), ``fetch`` (verified inputs), ``spec`` (edits), ``deps`` (floors),
``build`` (rpmbuild in a container), and one module per outside system:
``engine`` (Docker), ``rpmfile`` (rpm: headers and payloads).
"""

__version__ = "0.1.0"
