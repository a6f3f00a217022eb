"""kubeadm's configuration for one machine: init, control-plane join, or worker join."""

from __future__ import annotations

from typing import Any

import yaml

from stackconfig.model import Machine, StackConfig

API_VERSION = "kubeadm.k8s.io/v1beta4"
# containerd's CRI endpoint: its `grpc.address` (the containerd config.toml every node gets).
CRI_SOCKET = "unix:///run/containerd/containerd.sock"
CONF_DIR = "/etc/stubernetes"
# What `kubeadm init` reads on the founding controller, or `kubeadm join` everywhere else.
KUBEADM_CONFIG = f"{CONF_DIR}/kubeadm.yaml"
# The founding controller's other config: the control-plane join it runs instead of `kubeadm
# init` when its cluster already answers at the API endpoint (a reinstall from its Ignition).
KUBEADM_JOIN_CONFIG = f"{CONF_DIR}/kubeadm-join.yaml"
# kubeadm's `patches.directory`: files named target[suffix][+patchtype].yaml (v1beta4 Patches).
KUBEADM_PATCHES = f"{CONF_DIR}/kubeadm-patches"
# The SELinux level every container of the etcd static pod runs at (see ETCD_PATCH).
ETCD_SELINUX_LEVEL = "s0"


def _node_registration(machine: Machine) -> dict[str, Any]:
    registration: dict[str, Any] = {"name": machine.name, "criSocket": CRI_SOCKET}
    if machine.labels:
        labels = ",".join(f"{k}={v}" for k, v in sorted(machine.labels.items()))
        registration["kubeletExtraArgs"] = [{"name": "node-labels", "value": labels}]
    if machine.taints:
        registration["taints"] = [
            t.model_dump(exclude_none=True, by_alias=True) for t in machine.taints
        ]
    return registration


def _local_endpoint(stack: StackConfig, machine: Machine) -> dict[str, Any]:
    """Where this controller's API server listens: its address, at the apiEndpoint's port.

    kubeadm serves the API on `localAPIEndpoint.bindPort` (`--secure-port`; kubernetes
    cmd/kubeadm/app/phases/controlplane/manifests.go, getAPIServerCommand) and points every
    kubeconfig and join at `controlPlaneEndpoint`: with a single controller at its own address,
    or a virtual IP that moves between controllers, both must be the same port."""
    if machine.address is None:
        return {}
    return {
        "localAPIEndpoint": {
            "advertiseAddress": str(machine.address.ip),
            "bindPort": stack.cluster.api_port,
        }
    }


def kubernetes_version(stack: StackConfig) -> str:
    """kubeadm's `kubernetesVersion`: the exact release of the binaries the node downloads
    (v1.36.3), so the control plane's images match its kubelet and kubeadm."""
    return f"v{stack.cluster.kubernetes_release}"


def _cluster_configuration(stack: StackConfig) -> dict[str, Any]:
    cluster = stack.cluster
    return {
        "apiVersion": API_VERSION,
        "kind": "ClusterConfiguration",
        "clusterName": cluster.name,
        "kubernetesVersion": kubernetes_version(stack),
        "controlPlaneEndpoint": cluster.api_endpoint,
        "encryptionAlgorithm": "ECDSA-P256",
        "apiServer": {"certSANs": [cluster.api_host]},
        "controllerManager": {
            "extraArgs": [{"name": "flex-volume-plugin-dir", "value": FLEX_VOLUME_DIR}]
        },
        "networking": {
            "podSubnet": str(cluster.pod_cidr),
            "serviceSubnet": str(cluster.service_cidr),
        },
    }


# /usr is read-only on Fedora CoreOS, so FlexVolume plugins live under /opt (kubelet and
# controller manager must agree).
FLEX_VOLUME_DIR = "/opt/libexec/kubernetes/kubelet-plugins/volume/exec/"

# The kubelet's settings, uploaded by `kubeadm init` for every node. cgroupDriver matches the
# runtime's SystemdCgroup. The shutdown grace periods are Typhoon's: on a reboot (Zincati's OS
# updates among them) the kubelet holds a systemd-logind inhibitor lock and stops pods first,
# critical ones last; it raises logind's InhibitDelayMaxSec to match by itself (kubernetes
# pkg/kubelet/nodeshutdown/systemd/inhibit_linux.go, /etc/systemd/logind.conf.d/99-kubelet.conf).
KUBELET_CONFIGURATION = {
    "apiVersion": "kubelet.config.k8s.io/v1beta1",
    "kind": "KubeletConfiguration",
    "cgroupDriver": "systemd",
    "volumePluginDir": FLEX_VOLUME_DIR,
    "shutdownGracePeriod": "45s",
    "shutdownGracePeriodCriticalPods": "30s",
}

# etcd's files in /var/lib/etcd take the SELinux level of the process that creates them, and
# the runtime gives every new pod sandbox a random MCS category pair: after a reboot the new etcd
# could not read its own data. A fixed level (Typhoon does the same for Calico's install-cni,
# poseidon/terraform-render-bootstrap#186) keeps it readable; the setup service labels
# /var/lib/etcd with the same level.
ETCD_PATCH = {"spec": {"securityContext": {"seLinuxOptions": {"level": ETCD_SELINUX_LEVEL}}}}


def kubeadm_patches(machine: Machine) -> dict[str, str]:
    """kubeadm's patches by file name, for `patches.directory` (controllers only)."""
    if not machine.is_controller:
        return {}
    return {"etcd+strategic.yaml": dump_yaml([ETCD_PATCH])}


def founds_cluster(stack: StackConfig, machine: Machine, cluster_exists: bool = False) -> bool:
    """Whether this machine's Ignition is the founding one: `kubeadm init`, with the cluster's CA
    material in it. Until the cluster has answered, that is the init controller (on its first
    install, or on a rebuild as the only controller: `StackConfig.bootstraps_cluster`). Once it
    has, only a rebuild the stack allows (`allowClusterRebuild`, one controller) needs it again;
    every other install joins the cluster that exists."""
    if not stack.bootstraps_cluster(machine):
        return False
    # With backups, the rebuilt only controller restores etcd before init, and so does the
    # init controller of a stack that names the snapshot to restore (ignition.etcd_backup).
    rebuild = stack.cluster.allow_cluster_rebuild or stack.backups is not None
    return (
        not cluster_exists or (len(stack.controllers) == 1 and rebuild) or stack.restores_snapshot
    )


def joins_with_certificate_key(
    stack: StackConfig, machine: Machine, cluster_exists: bool = False
) -> bool:
    """A controller that does not found the cluster joins it with kubeadm's certificate key: it
    downloads the shared CA material from the `kubeadm-certs` Secret (ignition.kubeadm_certs)."""
    return machine.is_controller and not founds_cluster(stack, machine, cluster_exists)


def kubeadm_command(stack: StackConfig, machine: Machine, cluster_exists: bool = False) -> str:
    """`init` on the founding controller (which joins instead when its cluster answers)."""
    return "init" if founds_cluster(stack, machine, cluster_exists) else "join"


def _patches(machine: Machine) -> dict[str, Any]:
    return {"patches": {"directory": KUBEADM_PATCHES}} if machine.is_controller else {}


def _join_configuration(
    stack: StackConfig,
    machine: Machine,
    token: str,
    ca_cert_hash: str,
    certificate_key: str | None = None,
) -> dict[str, Any]:
    join: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "JoinConfiguration",
        "discovery": {
            "bootstrapToken": {
                "token": token,
                "apiServerEndpoint": stack.cluster.api_endpoint,
                "caCertHashes": [ca_cert_hash],
            }
        },
        "nodeRegistration": _node_registration(machine),
        **_patches(machine),
    }
    if machine.is_controller:
        control_plane = _local_endpoint(stack, machine)
        if certificate_key is not None:
            # kubeadm's download-certs phase fetches the kubeadm-certs Secret with the token and
            # decrypts it with this key (v1beta4 JoinControlPlane.certificateKey; kubernetes
            # cmd/kubeadm/app/cmd/phases/join/controlplaneprepare.go). Without it (the founding
            # controller's own join) the CA material is the Ignition's.
            control_plane["certificateKey"] = certificate_key
        join["controlPlane"] = control_plane
    return join


def kubeadm_config(
    stack: StackConfig,
    machine: Machine,
    token: str,
    ca_cert_hash: str,
    certificate_key: str | None = None,
    cluster_exists: bool = False,
) -> str:
    """The multi-document YAML that `kubeadm init|join --config` reads on this machine."""
    documents: list[dict[str, Any]]
    if founds_cluster(stack, machine, cluster_exists):
        documents = [
            {
                "apiVersion": API_VERSION,
                "kind": "InitConfiguration",
                # No bootstrapTokens: the program creates every machine's token itself once the
                # API server answers (this machine's too). kubeadm's defaulting then adds one
                # random token of its own that expires after 24 hours (v1beta4 defaults.go,
                # SetDefaults_BootstrapTokens).
                "nodeRegistration": _node_registration(machine),
                **_local_endpoint(stack, machine),
                **_patches(machine),
            },
            _cluster_configuration(stack),
            # Only init reads it: kubeadm uploads it as the kubelet-config ConfigMap, which
            # every join downloads; a join ignores a KubeletConfiguration document with a
            # warning (cmd/kubeadm/app/util/config/joinconfiguration.go).
            KUBELET_CONFIGURATION,
        ]
    else:
        if joins_with_certificate_key(stack, machine, cluster_exists) and not certificate_key:
            raise ValueError(
                f"machine '{machine.name}': a joining controller needs its certificate key"
            )
        documents = [_join_configuration(stack, machine, token, ca_cert_hash, certificate_key)]
    return dump_yaml(documents)


def kubeadm_join_config(
    stack: StackConfig,
    machine: Machine,
    token: str,
    ca_cert_hash: str,
    cluster_exists: bool = False,
) -> str | None:
    """The founding controller's control-plane join, for when its cluster already answers;
    None for every other machine (their kubeadm.yaml is a join already)."""
    if not founds_cluster(stack, machine, cluster_exists):
        return None
    return dump_yaml([_join_configuration(stack, machine, token, ca_cert_hash)])


# libyaml's emitter when PyYAML has it: the same text as the pure-Python one (a test holds
# them to that), at a twentieth of the cost, which counts on every machine of every preview.
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump_yaml(documents: list[dict[str, Any]], dumper: type[yaml.SafeDumper] = _DUMPER) -> str:
    return yaml.dump_all(documents, Dumper=dumper, sort_keys=True, default_flow_style=False)
