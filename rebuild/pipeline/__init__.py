"""The stages of a build, in order: ``inputs`` (a build resolved once: its SRPM, pin and build key, from
which the manifest's inputs and the index entry come), ``fetch`` (a recipe's SRPM: its pin and URLs, fetched through ``systems.store``), ``spec`` (byte-exact macro edits; ``specrules`` where rpm would undo or skip one;
``speccheck`` has rpmspec read the result in a container; ``backport`` adds a recipe's patches and BuildRequires edits), ``floors`` (dependency floors against the
root's rpmdb), ``build`` (the orchestrator; ``steps`` run in the container, ``tools`` reads what the root's
rpm is, ``workdir`` holds its folders and reads its log, ``batch`` runs several), ``checks`` (the built
RPMs installed and tested in a fresh container), ``publish`` (a signed repository; ``repopage`` its web
pages). ``result`` is the typed result folder they share (``resultcheck`` its file checks);
``buildindex`` the no-op rebuild index (one index, one lookup); ``plan`` the CI matrix (``k8splan`` as a
Kubernetes Indexed Job). ``chain`` builds
SRPMs that need each other in waves (``chainplan`` prints the waves for CI; ``backportplan`` finds which
SRPMs of a newer release must be rebuilt first)."""
