"""One module per outside system: ``engine`` (the container engine, behind a Protocol),
``rpmfile`` (RPM headers, payloads and their checks), ``evr`` (rpm's version order),
``urls`` and ``download`` (HTTP servers and mirrors), ``store`` (the cache: the one module that knows its
layout, and the verified download loop that fills it)."""
