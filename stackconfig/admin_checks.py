"""The admin account: a user of its own, and a password hash the console's login can check.

Ignition creates the admin with useradd, or, when the name already exists in the image,
changes that account with usermod (coreos/ignition internal/exec/util/passwd.go, EnsureUser):
naming a system account would hand the admin's SSH keys and sudo to an account whose shell is
/usr/sbin/nologin and whose files belong to a service.
"""

from __future__ import annotations

import re

# The accounts the Fedora CoreOS image owns:
# - coreos/fedora-coreos-config `manifests/passwd` (rpm-ostree's check-passwd list, which
#   keeps their IDs stable across updates), which begins with the `setup` package's
#   /etc/passwd (root, bin, daemon, adm, lp, sync, shutdown, halt, mail, operator, games, ftp,
#   nobody) and adds the packages' own (dbus, polkitd, etcd, tss, avahi-autoipd, rpc, sssd,
#   dockerroot, rpcuser, nfsnobody, kube, sshd, chrony, tcpdump, ceph, cockpit-ws and the
#   systemd-* users);
# - systemd's sysusers.d (systemd-coredump, systemd-oom, systemd-network, systemd-resolve,
#   systemd-timesync, ...): every `systemd-` name is refused below;
# - coreos/zincati `dist/sysusers.d/50-zincati.conf`: zincati, the update agent.
# `core` is not among them: Fedora CoreOS documents it as the default admin to configure
# through Ignition (docs.fedoraproject.org/en-US/fedora-coreos/authentication/).
SYSTEM_USERS = frozenset(
    {
        "bin",
        "daemon",
        "adm",
        "lp",
        "sync",
        "shutdown",
        "halt",
        "mail",
        "operator",
        "games",
        "ftp",
        "nobody",
        "dbus",
        "polkitd",
        "etcd",
        "tss",
        "avahi-autoipd",
        "rpc",
        "sssd",
        "dockerroot",
        "rpcuser",
        "nfsnobody",
        "kube",
        "sshd",
        "chrony",
        "tcpdump",
        "ceph",
        "cockpit-ws",
        "zincati",
    }
)
SYSTEM_USER_PREFIX = "systemd-"


def check_admin_user(name: str) -> str:
    if name == "root":
        raise ValueError(
            "root is the superuser, not an admin account: stubernetes gives the admin sudo "
            "and SSH keys, which for root would only open a root login over SSH; pick a name "
            "of your own (e.g. 'admin'), or 'core', Fedora CoreOS's default admin"
        )
    if name in SYSTEM_USERS or name.startswith(SYSTEM_USER_PREFIX):
        raise ValueError(
            f"{name!r} is a system account of the Fedora CoreOS image: Ignition would change "
            "that account instead of creating an admin, and its shell, /usr/sbin/nologin, "
            "refuses SSH sessions; pick a name of your own (e.g. 'admin'), or 'core'"
        )
    return name


# crypt(5) of libxcrypt (the crypt(3) of Fedora, which shadow-utils and PAM use), section
# AVAILABLE HASHING METHODS: each method's prefix and the form of a whole hash. The first
# six are the ones crypt(5) recommends or calls acceptable for new hashes.
STRONG_HASHES = (
    (
        "yescrypt",
        "$y$",
        re.compile(r"^\$y\$[./A-Za-z0-9]+\$[./A-Za-z0-9]{0,86}\$[./A-Za-z0-9]{43}$"),
    ),
    (
        "gost-yescrypt",
        "$gy$",
        re.compile(r"^\$gy\$[./A-Za-z0-9]+\$[./A-Za-z0-9]{0,86}\$[./A-Za-z0-9]{43}$"),
    ),
    ("scrypt", "$7$", re.compile(r"^\$7\$[./A-Za-z0-9]{11,97}\$[./A-Za-z0-9]{43}$")),
    ("bcrypt", "$2", re.compile(r"^\$2[abxy]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$")),
    (
        "sha512crypt",
        "$6$",
        re.compile(r"^\$6\$(rounds=[1-9][0-9]+\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}$"),
    ),
    (
        "sha256crypt",
        "$5$",
        re.compile(r"^\$5\$(rounds=[1-9][0-9]+\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{43}$"),
    ),
)
# The methods crypt(5) says not to use for new hashes: MD5, SHA-1 and DES based, and NT.
WEAK_HASHES = (
    ("sha1crypt", re.compile(r"^\$sha1\$")),
    ("sunmd5", re.compile(r"^\$md5[$,]")),
    ("md5crypt", re.compile(r"^\$1\$")),
    ("NT", re.compile(r"^\$3\$")),
    ("bsdicrypt", re.compile(r"^_[./0-9A-Za-z]{19}$")),
    ("descrypt or bigcrypt", re.compile(r"^[./0-9A-Za-z]{13,178}$")),
)
HOW_TO_HASH = (
    "make one with `mkpasswd --method=yescrypt` and set it as a secret: pulumi config set "
    "--secret --path admin.passwordHash '<hash>'"
)


def password_hash_problem(value: str) -> str | None:
    """Why `value` is not a crypt(3) hash to set as the admin's password, or None. The value
    itself is never repeated: when it is no hash, it may well be the password."""
    for name, prefix, form in STRONG_HASHES:
        if value.startswith(prefix):
            if form.match(value):
                return None
            return (
                f"it starts like a {name} hash ({prefix}) but is not one (crypt(5)); " + HOW_TO_HASH
            )
    weak = next((name for name, form in WEAK_HASHES if form.match(value)), None)
    if weak is not None:
        return (
            f"it is hashed with {weak}, a method crypt(5) says is too weak for new passphrases "
            f"(or a password that looks like one); {HOW_TO_HASH}"
        )
    return (
        "it is not a crypt(3) password hash (crypt(5): yescrypt '$y$...', sha512crypt "
        f"'$6$...', bcrypt '$2b$...'); {HOW_TO_HASH}"
    )


def check_password_hash(value: str) -> str:
    # Offline, a secret reads as a stand-in (stackconfig.stackfile's SECURE_STAND_IN, made
    # distinct as "<stand-in>-<n>" by stubernetes/render.py distinct_stand_ins): its real value
    # is checked when the Pulumi program reads the decrypted config. Imported here: stackfile
    # imports the model, which imports this module.
    from stackconfig.stackfile import SECURE_STAND_IN

    if value == SECURE_STAND_IN or value.startswith(f"{SECURE_STAND_IN}-"):
        return value
    problem = password_hash_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value
