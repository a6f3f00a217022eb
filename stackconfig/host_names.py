"""Names that must resolve as meant: machine names, the household domain and the API endpoint.

- RFC 1123 §2.1 (after RFC 952): a host name label is letters, digits and '-', 1 to 63
  characters, starting and ending with a letter or digit; a whole name is at most 253
  characters (RFC 1035 §2.3.4: 255 octets on the wire); a top-level label is never all
  digits (RFC 3696 §2), so that no name reads as a dotted-decimal address.
- systemd's nss-myhostname(8), which Fedora CoreOS's /etc/nsswitch.conf consults before DNS,
  resolves "localhost", "localhost.localdomain" and any name ending in ".localhost" to
  127.0.0.1 and ::1 (RFC 6761 §6.3 reserves .localhost for that), and the synthetic names
  "_gateway", "_outbound", "_localdnsstub" and "_localdnsproxy" (the last two from
  systemd-resolved); the underscore keeps these out of RFC 1123 labels already.
"""

from __future__ import annotations

import ipaddress
import re

from stackconfig.addresses import special_use

DNS_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
DNS_NAME_MAX = 253
# Names a resolver answers with the machine itself rather than with the machine so named:
# nss-myhostname's "localhost"; Fedora's /etc/hosts (the `setup` package: "localhost
# localhost.localdomain localhost4 localhost4.localdomain4" and "localhost6 ...") maps
# localhost4 and localhost6 to loopback; Debian's and Ubuntu's /etc/hosts (netbase), on the
# workstations that reach the cluster, map ip6-localhost and ip6-loopback to ::1.
LOOPBACK_NAMES = frozenset(
    {"localhost", "localhost4", "localhost6", "ip6-localhost", "ip6-loopback"}
)
# glibc's inet_aton(3), which getaddrinfo(3) tries before any lookup, reads a single number
# as a whole IPv4 address, in decimal, octal (leading 0) or hexadecimal (leading 0x):
# "1234" is 0.0.4.210 and "0x7f000001" is 127.0.0.1, never a host name.
NUMERIC_HOST = re.compile(r"^([0-9]+|0[xX][0-9a-fA-F]+)$")


def _is_localhost(name: str) -> bool:
    lowered = name.lower()
    return lowered in ("localhost", "localhost.localdomain") or lowered.endswith(
        (".localhost", ".localhost.localdomain")
    )


def check_machine_name(name: str) -> str:
    """A machine's name is its host name and Node name: one that resolves to itself only
    through the household DNS, not to the local host or to a number."""
    if name in LOOPBACK_NAMES:
        raise ValueError(
            f"{name!r} is what every host calls itself (nss-myhostname and /etc/hosts resolve "
            "it to the loopback address), so no other machine could reach this one by name "
            "and its kubelet would register a Node that every node takes for itself; pick "
            "another name"
        )
    if NUMERIC_HOST.match(name):
        raise ValueError(
            f"{name!r} reads as an IPv4 address (glibc's inet_aton takes a single number, "
            "decimal, octal or 0x hexadecimal, as a whole address), so resolvers never look "
            "it up as a name; use a name with a letter that is not a 0x prefix"
        )
    return name


def dns_name_problem(name: str) -> str | None:
    """Why `name` (without a trailing dot) is not a DNS host name, or None."""
    if not name:
        return "it is empty"
    if len(name) > DNS_NAME_MAX:
        return f"it is longer than {DNS_NAME_MAX} characters"
    labels = name.split(".")
    bad = next((label for label in labels if not DNS_LABEL.match(label)), None)
    if bad is not None:
        shown = "an empty label (two dots, or a leading dot)" if bad == "" else repr(bad)
        return (
            f"{shown} is not an RFC 1123 label (letters, digits and '-', at most 63, "
            "starting and ending with a letter or digit)"
        )
    if labels[-1].isdigit():
        return f"its last label {labels[-1]!r} is all digits, so it reads as an address"
    if _is_localhost(name):
        return "it is localhost or under .localhost, which resolves to the loopback address"
    return None


def check_domain(domain: str) -> str:
    """The household domain: stubernetes joins it to machine names (`c1.lab.home.arpa`) for
    the household DNS records and writes it as each static machine's DNS search domain, so it
    is written without the trailing dot of an absolute name."""
    if domain.endswith(".") and domain != ".":
        raise ValueError(
            f"{domain!r}: write the domain without the trailing dot ({domain[:-1]!r}); it is "
            "joined to machine names and used as the DNS search domain"
        )
    problem = dns_name_problem(domain)
    if problem is not None:
        raise ValueError(f"{domain!r} is not a DNS domain name: {problem}")
    return domain


def _looks_numeric(host: str) -> bool:
    return all(part.isascii() and part.isdigit() for part in host.split("."))


def check_api_endpoint(value: str) -> str:
    """`host:port`, as kubeadm's controlPlaneEndpoint takes it and kubeconfigs are built from
    it (`https://<apiEndpoint>`): no scheme, a DNS name or IPv4 address, a port 1-65535."""
    _scheme, sep, rest = value.partition("://")
    if sep:
        raise ValueError(
            f"expected host:port without a scheme, got {value!r}: kubeadm and the kubeconfigs "
            f"add https:// themselves; write {rest.rstrip('/')!r}"
        )
    host, sep, port = value.rpartition(":")
    if host.startswith("[") or ":" in host:
        raise ValueError(
            f"{value!r}: an IPv6 host is not supported; the cluster is IPv4-only (podCidr, "
            "serviceCidr and the machines' addresses are IPv4), so use an IPv4 address or a "
            "DNS name"
        )
    if not sep or not host or not port:
        raise ValueError(f"expected host:port, e.g. 192.168.10.11:6443, got {value!r}")
    # str.isdigit() alone takes '٣' and '²'; a port is ASCII digits (RFC 3986 §3.2.3).
    if not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r}: the port {port!r} is not a number from 1 to 65535")
    if _looks_numeric(host):
        try:
            address = ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"{value!r}: {host!r} is not an IPv4 address") from None
        what = special_use(address)
        if what is not None:
            raise ValueError(
                f"{value!r}: {host} is {what}, which the other machines cannot reach the API "
                "server at"
            )
        return value
    problem = dns_name_problem(host)
    if problem is not None:
        raise ValueError(f"{value!r}: {host!r} is not a DNS name: {problem}")
    return value
