"""Making build roots: ``treeindex`` (the headers of a tree; ``treehttp`` its bounded HTTP reads), ``solver``
(libsolv), ``buildroot`` (the plan, the fetch and the lock: ``lock``), ``treeimage`` (a root from an RPM
tree, its rpmdb written by the root's own rpm), ``layers`` (a build's BuildRequires and floors),
``registry`` (push and pull), ``images`` (debootstrap roots), ``unpack`` (payloads laid out as rpm
would, never through a planted symlink, and streamed to the engine as one tar), ``pins`` (the image a
target must use), ``shell`` (rebuild shell)."""
