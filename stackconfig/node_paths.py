"""Paths on a node's disk that more than one layer must agree on: pure Python, no imports.

`ignition/` writes CRI-O's drop-in that names these directories; the pod network's chart
mounts the same host path to copy its CNI plugins into.
"""

from __future__ import annotations

# The writable directory the pod network's CNI plugins are copied into. /opt/cni/bin is not
# writable on Fedora CoreOS once kubernetes-cni is layered (rpm-ostree moves /opt of a layered
# package into read-only /usr/lib/opt), so CRI-O is told to search this directory as well.
NODE_CNI_BIN_DIR = "/var/lib/cni/bin"

# OpenEBS Local PV's hostpath base directory (its chart's default `basePath`): the setup service
# labels it for containers (container_file_t) before anything runs, as container-selinux's
# container.fc labels the equivalent directories of local-path-provisioner.
OPENEBS_HOSTPATH_DIR = "/var/openebs/local"
