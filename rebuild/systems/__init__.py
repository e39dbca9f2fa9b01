"""One module per outside system: ``engine`` (the container engine, behind a Protocol),
``rpmfile`` (RPM headers, payloads and their checks), ``evr`` (rpm's version order),
``urls`` and ``download`` (HTTP servers and mirrors)."""
