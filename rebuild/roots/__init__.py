"""Making build roots: ``images`` (make a target's image; debootstrap roots), ``treeimage`` (a root
from an RPM tree, its rpmdb written by the root's own rpm), ``rpmtree`` (listing trees),
``unpack`` (payloads written without following symlinks), ``pins`` (the image a target must use)."""
