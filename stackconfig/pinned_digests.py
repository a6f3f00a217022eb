"""The sha256 of every binary a node downloads, pinned in this repository per release.

Nothing here is fetched at install time: a node runs only files whose digest Ignition checked
against these values (or against digests the stack itself supplies, `binaries.sha256`).

Origin: dl.k8s.io publishes `<binary>.sha256` beside each release binary
(https://dl.k8s.io/release/v<version>/bin/linux/amd64/<binary>.sha256), and the CNI plugins'
GitHub release publishes `cni-plugins-linux-amd64-v<version>.tgz.sha256`. Copied from
kubespray, which records exactly those files (kubernetes-sigs/kubespray
roles/kubespray_defaults/vars/main/checksums.yml at 46dbdd3994b32640bcd806b0097f50e8fdf1d514,
2026-08-21, keys kubelet_checksums, kubeadm_checksums, kubectl_checksums,
cni_binary_checksums, crictl_checksums, arch amd64), for every patch of the supported minors
it lists. It lists
no 1.37 release yet: a 1.37 stack names its patch and supplies the digests itself.
"""

from __future__ import annotations

from typing import Final

# The Kubernetes binaries a node runs, as dl.k8s.io names them.
KUBERNETES_BINARIES: Final = ("kubeadm", "kubectl", "kubelet")

# version -> binary -> sha256 (hex), linux/amd64.
KUBERNETES_SHA256: Final[dict[str, dict[str, str]]] = {
    "1.35.0": {
        "kubeadm": "729e7fb34e4f1bfcf2bdaf2a14891ed64bd18c47aaab42f8cc5030875276cfed",
        "kubectl": "a2e984a18a0c063279d692533031c1eff93a262afcc0afdc517375432d060989",
        "kubelet": "2f4ed7778681649b81244426c29c5d98df60ccabf83d561d69e61c1cbb943ddf",
    },
    "1.35.1": {
        "kubeadm": "8a7ff344eef1bfba88f9a74b3fdc9ea4448c94f1b3cefb8c0aeeaf1f96e05053",
        "kubectl": "36e2f4ac66259232341dd7866952d64a958846470f6a9a6a813b9117bd965207",
        "kubelet": "e7343310e03ff0d424df4397bdfa4468947d6d1f0f93dac586c1e8d6e4086d5d",
    },
    "1.35.2": {
        "kubeadm": "a51cb85c70c98ec6868fd3413ac786af5fab4ce51438963752ec5f58e68e5452",
        "kubectl": "924eb50779153f20cb668117d141440b95df2f325a64452d78dff9469145e277",
        "kubelet": "20887f461c0de96b0cb14c7af6b897f92d424ac078f8642f98e83ef52a0bf03e",
    },
    "1.35.3": {
        "kubeadm": "a3fb4b3a214a807e2ef4c3fda3196c7f97dcf8152558de5a3c473c869bda0b07",
        "kubectl": "fd31c7d7129260e608f6faf92d5984c3267ad0b5ead3bced2fe125686e286ad6",
        "kubelet": "28d570423eaad5f1f5658a646bd8c015c786c95d62ffaf14bf35fa0c4326fa05",
    },
    "1.35.4": {
        "kubeadm": "0c0497da793f8897c14e45340da919534b615294a1aab69dc1998896c0f11145",
        "kubectl": "b529430df69a688fd61b64ad2299edb5fd71cb58be2a4779dba624c7d3510efd",
        "kubelet": "983a6ba5a49823dcdd745c674e5e2416377dd27d6ad1b42d2befa0fb961a19f6",
    },
    "1.35.5": {
        "kubeadm": "cbf71fbee3a3f60edf3fae4e50994f88a35b35cddf65d373d7955b58e8785397",
        "kubectl": "90f75ea6ecc9ea5633262e1c0b83a40560003b30fc94a04cb099404fcef0c224",
        "kubelet": "4ba1f892bd52fdae7cd2abb1b1111054ff274c71f88af0a85fd9f1107e8d46c8",
    },
    "1.35.6": {
        "kubeadm": "49fd320be1d6af003fc3b61ad60cf30b02838a661ab0139798e021f7e378d806",
        "kubectl": "5d11e2ba01ea68ffd053f56e27738e2b4330013ee67f7e46c6da6c585d3c9926",
        "kubelet": "f320e9485cdb8fd190ab45efd3c3e29f6fcf4ad1a4c610a058d8f0b6bcd34a3a",
    },
    "1.35.7": {
        "kubeadm": "9206f531ffe9cef39e9b734bc49ee9ca965d646ff6d4536e5b3fd3ff71151512",
        "kubectl": "12e97f9d23a9f6cbb87b89becd6bd291e1a858a3379a4e11e2c822c4c1530052",
        "kubelet": "e48cbb9c62351aa95f455bdae3c9a9e9d7d644027c231ade7a67b868b2be3258",
    },
    "1.35.8": {
        "kubeadm": "1bbc64a2be5b300880ae9330c6bba592ec2a2b8ecb79c527b0c7cc0f44070e5e",
        "kubectl": "874d5e72dbb819f43cff16bcd1e4f8bac5b7f2361fe1e55049b0a6c676fb0cbf",
        "kubelet": "6971b9f95e54dbed67a2271abe6e78f8cc2894494649f3cf39e4b25a82dca923",
    },
    "1.36.0": {
        "kubeadm": "f962dcee1f49a51368c3b383742144d99eacff77b2132cd0a540ed8c6b30fe81",
        "kubectl": "123d8c8844f46b1244c547fffb3c17180c0c26dac9890589fe7e67763298748e",
        "kubelet": "d857082946c28493e8fdc52227feabd962e0e0900b6c6e4f6510168043b79dd4",
    },
    "1.36.1": {
        "kubeadm": "f35980333a4dae753807345ae359eca03f48f9945855e6a6a6708fe8b3b24038",
        "kubectl": "629d3f410e09bf49b64ae7079f7f0bda1191efed311f7d37fdbab0ad5b0ec2b7",
        "kubelet": "7efa1780c73d9fb3a464002864e582eb2d15aa691e475eaae323093d08feae14",
    },
    "1.36.2": {
        "kubeadm": "f95d1b345f97c673ce1c1347eb96bf2587850975155ae701cdfc629a5b575b70",
        "kubectl": "1e9045ec32bea85da43de85f0065358529ea7c7a152eca78154fba5b58c27d82",
        "kubelet": "3ba68cb4f0906053c08ab843131d5cec559cf8c718dbd679950a078b306abbb4",
    },
    "1.36.3": {
        "kubeadm": "bba1733c701bf70ec74ba1cc3fd5745404c1134a8a4b0a5f8560cc9832023421",
        "kubectl": "ebbd080e7c2e275093b55915722043257eb24004363e20acb3c4d71919f88336",
        "kubelet": "46707a53209f826ad0f0d62371ac69cd00e78fd9a8176cf5f6f87f18f7f8b718",
    },
    "1.36.4": {
        "kubeadm": "10d054585907f2c8bb823c84f6a66b3bd2a474c3d795475f04e9a44f78650fe6",
        "kubectl": "8b8f088da2dab964f853b38464033b1be15ede2839eca751482357c45abdd05a",
        "kubelet": "cf2562db46c48ab84cc3791540778ee7fb1a0a008529adbb434723dd02ed8b4b",
    },
}

# The reference CNI plugins (github.com/containernetworking/plugins): flannel's conflist
# delegates to bridge and host-local and chains portmap. Fedora CoreOS ships none of them since
# Fedora 40 (coreos/fedora-coreos-config#2852).
CNI_PLUGINS_VERSION: Final = "1.9.1"
CNI_PLUGINS_SHA256: Final = "b98f74a0f8522f0a83867178729c1aa70f2158f90c45a2ca8fa791db1c76b303"

# crictl (sigs.k8s.io/cri-tools), the CRI client the certificate renewal restarts the control
# plane's static pods with, and the one kubeadm's own messages send the operator to. Fedora
# CoreOS does not ship it. Its GitHub release publishes crictl-v<version>-linux-amd64.tar.gz
# with a .sha256 beside it; kubespray's crictl_checksums records it.
CRICTL_VERSION: Final = "1.36.0"
CRICTL_SHA256: Final = "83855e114566a8a8c44c548d515670f51de3a5e1da8b2effb59870e2f10c25a3"
