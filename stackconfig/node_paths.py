"""Paths on a node's disk that more than one layer must agree on: pure Python, no imports.

`ignition/` writes the runtime's config that names these directories; the pod network's chart
mounts the same host path to copy its CNI plugins into.
"""

from __future__ import annotations

# Where the CNI plugins live: the reference plugins the setup service unpacks, and the pod
# network's own, which its chart copies beside them. containerd's default `bin_dir`, named in
# the node's containerd config; writable on Fedora CoreOS (/opt is a link to /var/opt).
NODE_CNI_BIN_DIR = "/opt/cni/bin"

# OpenEBS Local PV's hostpath base directory (its chart's default `basePath`): the setup service
# labels it for containers (container_file_t) before anything runs, as container-selinux's
# container.fc labels the equivalent directories of local-path-provisioner.
OPENEBS_HOSTPATH_DIR = "/var/openebs/local"
