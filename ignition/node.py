"""The complete Ignition config of one machine: admin, host, network, Kubernetes, setup service.

`machine_ignition` is a pure function of its arguments: the same stack, machine and material
give byte-identical output (`entries.dumps`).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from ignition.assets import read_asset, render_template
from ignition.cert_renewal import add_cert_renewal
from ignition.container_runtime import containerd_config
from ignition.entries import (
    MODE_0440,
    MODE_0600,
    MODE_0755,
    SPEC_VERSION,
    data_url,
    dumps,
    file_entry,
    unit_entry,
)
from ignition.etcd_backup import add_etcd_backup
from ignition.flatcar_machine import flatcar_machine_ignition
from ignition.kubeadm import (
    KUBEADM_CONFIG,
    KUBEADM_JOIN_CONFIG,
    KUBEADM_PATCHES,
    founds_cluster,
    kubeadm_command,
    kubeadm_config,
    kubeadm_join_config,
    kubeadm_patches,
)
from ignition.material import ClusterMaterial, is_bootstrap_token
from ignition.node_binaries import CNI_PLUGINS_ARCHIVE, CRICTL_ARCHIVE, download_entries
from ignition.os_updates import ZINCATI, ZINCATI_STRATEGY, updates_hold
from ignition.setup_paths import SETUP_BIN, SETUP_CONF, SETUP_LIB, SETUP_UNIT
from ignition.status_report import add_status_report
from ignition.upgrade import add_upgrade
from ignition.vip import add_vip
from stackconfig.model import Machine, StackConfig
from stackconfig.node_paths import NODE_CNI_BIN_DIR, OPENEBS_HOSTPATH_DIR
from stackconfig.pinned_digests import CNI_PLUGINS_VERSION, CRICTL_VERSION
from stackconfig.release_digests import CNI_PLUGINS, CRICTL

SUDOERS_DROP_IN = "/etc/sudoers.d/stubernetes-admin"
ZINCATI_HOLD = ZINCATI.hold_file
# Replaces the file the containerd package ships (Typhoon's nodes overwrite it likewise).
CONTAINERD_CONFIG = "/etc/containerd/config.toml"
# udev reads link files from /etc/systemd/network (systemd.link(5)).
FLANNEL_LINK = "/etc/systemd/network/50-flannel.link"
# crictl's config file (cri-tools docs/crictl.md): its runtime endpoint, for every user.
CRICTL_CONFIG = "/etc/crictl.yaml"
ACCOUNTING_DROP_IN = "/etc/systemd/system.conf.d/50-stubernetes-accounting.conf"
ADMIN_GROUPS = ("wheel", "sudo")


@dataclass(frozen=True)
class SetupPolicy:
    """How hard the setup service retries a failing phase before it stops for good."""

    max_attempts: int = 40
    # Boots that may find one phase unfinished (crashed in) before setup stops for good.
    max_boots_per_phase: int = 10
    backoff_base_seconds: int = 5
    backoff_max_seconds: int = 60
    # Every command that may hang has a time limit: the unit itself has none.
    kubeadm_timeout_seconds: int = 600
    kubectl_timeout_seconds: int = 60


def _admin(stack: StackConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    admin = stack.admin
    user: dict[str, Any] = {
        "name": admin.user,
        "groups": list(ADMIN_GROUPS),
        "sshAuthorizedKeys": list(admin.ssh_authorized_keys),
    }
    if admin.password_hash:
        user["passwordHash"] = admin.password_hash
    # The drop-in's name has no dot: sudo skips files in sudoers.d whose names contain one.
    sudoers = file_entry(
        SUDOERS_DROP_IN, render_template("sudoers-admin", user=admin.user), MODE_0440
    )
    return user, sudoers


def _network_files(stack: StackConfig, machine: Machine) -> list[dict[str, Any]]:
    files = [file_entry("/etc/hostname", f"{machine.name}\n")]
    if machine.address is not None:
        keyfile = render_template(
            "static.nmconnection",
            mac=machine.mac.upper(),
            address=str(machine.address),
            gateway=f",{machine.gateway}" if machine.gateway else "",
            dns="".join(f"{server};" for server in machine.dns),
            domain=stack.cluster.domain,
        )
        # NetworkManager ignores keyfiles that others can read.
        files.append(
            file_entry(
                "/etc/NetworkManager/system-connections/stubernetes-static.nmconnection",
                keyfile,
                MODE_0600,
            )
        )
    return files


def _os_files(stack: StackConfig) -> list[dict[str, Any]]:
    """The host's settings, each with its reason in its file (ignition/files/node/)."""
    return [
        file_entry(CONTAINERD_CONFIG, containerd_config(stack)),
        file_entry("/etc/modules-load.d/stubernetes.conf", read_asset("node/modules-load.conf")),
        file_entry("/etc/sysctl.d/90-stubernetes.conf", read_asset("node/sysctl.conf")),
        file_entry(FLANNEL_LINK, read_asset("node/50-flannel.link")),
        file_entry(CRICTL_CONFIG, read_asset("node/crictl.yaml")),
        file_entry(ACCOUNTING_DROP_IN, read_asset("node/accounting.conf")),
        file_entry(ZINCATI_HOLD, read_asset("node/zincati-hold-updates.toml")),
        file_entry(
            ZINCATI_STRATEGY,
            render_template("zincati-fleetlock.toml", fleetlock_ip=str(stack.cluster.fleetlock_ip)),
        ),
    ]


def _runtime_units() -> list[dict[str, Any]]:
    """The runtime Fedora CoreOS ships, enabled; the kubelet as Kubernetes publishes its unit.

    Docker is masked as Typhoon masks it: Fedora CoreOS ships it too, and on the same
    containerd it would be a second way to run containers beside the kubelet's."""
    kubelet = unit_entry("kubelet.service", read_asset("node/kubelet.service"))
    kubelet["dropins"] = [
        {"name": "10-kubeadm.conf", "contents": read_asset("node/10-kubeadm.conf")}
    ]
    return [
        {"name": "containerd.service", "enabled": True},
        {"name": "docker.service", "mask": True},
        kubelet,
    ]


def container_file_paths(machine: Machine) -> tuple[str, ...]:
    """Host directories that confined containers read or write, which the setup service labels
    container_file_t before kubeadm runs (SELinux stays enforcing):

    - /etc/kubernetes, on controllers: the control-plane static pods read their certificates
      and kubeconfigs there; container-selinux labels it kubernetes_file_t, which it lets no
      container domain read (Typhoon's Fedora CoreOS controllers chcon their PKI likewise);
    - /var/lib/etcd, on controllers: kubeadm's etcd static pod writes its data there;
    - OpenEBS's hostpath directory, everywhere: its volumes' directories are made under it.
    """
    controller = ("/etc/kubernetes", "/var/lib/etcd") if machine.is_controller else ()
    return (*controller, OPENEBS_HOSTPATH_DIR)


def peer_api_endpoints(
    stack: StackConfig, machine: Machine, cluster_exists: bool = False
) -> tuple[str, ...]:
    """The founding controller's peers' own API servers: the controllers with an address."""
    if not founds_cluster(stack, machine, cluster_exists):
        return ()
    return tuple(
        f"{peer.address.ip}:6443"
        for peer in stack.controllers
        if peer.name != machine.name and peer.address is not None
    )


def _setup_files(
    stack: StackConfig, machine: Machine, policy: SetupPolicy, cluster_exists: bool
) -> list[dict[str, Any]]:
    env = render_template(
        "setup.env",
        name=shlex.quote(machine.name),
        role=machine.role,
        kubeadm_command=kubeadm_command(stack, machine, cluster_exists),
        api_endpoint=shlex.quote(stack.cluster.api_endpoint),
        peer_api_endpoints=shlex.quote(
            " ".join(peer_api_endpoints(stack, machine, cluster_exists))
        ),
        release=shlex.quote(stack.cluster.kubernetes_release),
        cni_plugins_version=shlex.quote(CNI_PLUGINS_VERSION),
        cni_plugins_archive=shlex.quote(CNI_PLUGINS_ARCHIVE),
        cni_plugins_sha256=stack.cluster.binary_digests[CNI_PLUGINS],
        crictl_version=shlex.quote(CRICTL_VERSION),
        crictl_archive=shlex.quote(CRICTL_ARCHIVE),
        crictl_sha256=stack.cluster.binary_digests[CRICTL],
        cni_bin_dir=shlex.quote(NODE_CNI_BIN_DIR),
        os_updates_hold=shlex.quote(updates_hold(stack).hold_file),
        os_updater=shlex.quote(updates_hold(stack).updater),
        container_file_paths=shlex.quote(" ".join(container_file_paths(machine))),
        max_attempts=str(policy.max_attempts),
        max_boots_per_phase=str(policy.max_boots_per_phase),
        backoff_base=str(policy.backoff_base_seconds),
        backoff_max=str(policy.backoff_max_seconds),
        kubeadm_timeout=str(policy.kubeadm_timeout_seconds),
        kubectl_timeout=str(policy.kubectl_timeout_seconds),
    )
    scripts = [
        file_entry(SETUP_BIN, read_asset("setup/stubernetes-setup"), MODE_0755),
        file_entry(f"{SETUP_LIB}/common.sh", read_asset("setup/common.sh")),
    ]
    scripts += [
        file_entry(f"{SETUP_LIB}/{script}", read_asset(f"setup/{script}"), MODE_0755)
        for script in ("phase-node", "phase-kubeadm", "phase-finish", "label-host-paths")
    ]
    return [*scripts, file_entry(f"{SETUP_CONF}/setup.env", env)]


def _kubernetes_files(
    stack: StackConfig,
    machine: Machine,
    material: ClusterMaterial,
    token: str,
    certificate_key: str | None,
    cluster_exists: bool,
) -> list[dict[str, Any]]:
    founding = founds_cluster(stack, machine, cluster_exists)
    files = [
        file_entry(
            KUBEADM_CONFIG,
            kubeadm_config(
                stack,
                machine,
                token,
                material.ca_cert_hash,
                None if founding else certificate_key,
                cluster_exists,
            ),
            MODE_0600,
        )
    ]
    join = kubeadm_join_config(stack, machine, token, material.ca_cert_hash, cluster_exists)
    if join is not None:
        files.append(file_entry(KUBEADM_JOIN_CONFIG, join, MODE_0600))
    files += [
        file_entry(f"{KUBEADM_PATCHES}/{name}", text)
        for name, text in kubeadm_patches(machine).items()
    ]
    # Only the founding controller carries the CA material (its init needs it); every other
    # controller downloads it with its certificate key (ignition.kubeadm_certs).
    if founding:
        pki = f"{SETUP_CONF}/pki"
        files += [
            file_entry(f"{pki}/{name}", pem, MODE_0600)
            for name, pem in material.kubeadm_files().items()
        ]
    return files


def _merged_snippets(machine: Machine) -> list[dict[str, Any]]:
    """User snippets as merge sources, so Ignition itself merges them over this config."""
    merges = []
    for snippet in machine.snippets:
        child = {"ignition": {"version": SPEC_VERSION}, **snippet}
        child["ignition"] = {**child["ignition"], "version": SPEC_VERSION}
        merges.append({"source": data_url(dumps(child))})
    return merges


def machine_ignition(
    stack: StackConfig,
    machine: Machine,
    material: ClusterMaterial,
    token: str,
    policy: SetupPolicy | None = None,
    certificate_key: str | None = None,
    cluster_exists: bool = False,
) -> dict[str, Any]:
    """`certificate_key`: a joining controller's (ignored for others); `cluster_exists`: whether
    the cluster has answered an earlier update (then nobody founds it again)."""
    if not is_bootstrap_token(token):
        # Never print it: it is a join credential.
        raise ValueError(
            f"machine '{machine.name}': the bootstrap token is not [a-z0-9]{{6}}.[a-z0-9]{{16}}"
        )
    policy = policy or SetupPolicy()
    user, sudoers = _admin(stack)
    files = [
        sudoers,
        *_network_files(stack, machine),
        *_os_files(stack),
        *download_entries(stack),
        *_setup_files(stack, machine, policy, cluster_exists),
        *_kubernetes_files(stack, machine, material, token, certificate_key, cluster_exists),
    ]
    ignition: dict[str, Any] = {"version": SPEC_VERSION}
    merges = _merged_snippets(machine)
    if merges:
        ignition["config"] = {"merge": merges}
    config: dict[str, Any] = {
        "ignition": ignition,
        "passwd": {"users": [user]},
        "storage": {"files": sorted(files, key=lambda f: f["path"])},
        "systemd": {
            "units": [
                *_runtime_units(),
                unit_entry(SETUP_UNIT, read_asset(f"setup/{SETUP_UNIT}")),
            ]
        },
    }
    add_cert_renewal(config, machine)
    add_status_report(config, material)
    add_vip(config, stack, machine)
    add_etcd_backup(config, stack, machine, material)
    add_upgrade(config)
    if machine.kernel_args:
        # The installed system's kernel arguments. On Fedora CoreOS, Ignition's kargs stage
        # applies them in the initramfs of the first boot and reboots once when they changed.
        config["kernelArguments"] = {"shouldExist": list(machine.kernel_args)}
    if stack.os.is_flatcar:
        return flatcar_machine_ignition(config, stack, machine)
    return config


def machine_ignition_json(
    stack: StackConfig,
    machine: Machine,
    material: ClusterMaterial,
    token: str,
    policy: SetupPolicy | None = None,
    certificate_key: str | None = None,
    cluster_exists: bool = False,
) -> bytes:
    return dumps(
        machine_ignition(stack, machine, material, token, policy, certificate_key, cluster_exists)
    )
