"""What a result carries about itself, in the formats others read: ``sbom`` (an SPDX 2.3 SBOM of the build
root, the SRPM and the built RPMs), ``provenance`` (an in-toto statement with a SLSA v1 predicate, and its
check), ``rpmdiff`` (two packages compared: files, dependencies, ELF sonames) and ``reproduce`` (a second
build in another environment, compared package by package); ``floors`` (a floors manifest suggested from a
result's build root)."""
