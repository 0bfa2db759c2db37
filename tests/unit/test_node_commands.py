"""Inside a node, the plain iptables names lead to the proxy's backend (issue 12 item 1):
which names, and over which directory their links are laid (pure parts)."""

from minikp.nodecommands import layers
from minikp.proxy.iptables.backend import command_links

DEBIAN = {  # Debian's iptables package: alternatives point the plain names at nft
    "iptables": "/usr/sbin/iptables", "iptables-save": "/usr/sbin/iptables-save",
    "iptables-restore": "/usr/sbin/iptables-restore", "ip6tables": "/usr/sbin/ip6tables",
    "ip6tables-save": "/usr/sbin/ip6tables-save", "ip6tables-restore": "/usr/sbin/ip6tables-restore",
    **{f"{f}-{b}{t}": f"/usr/sbin/{f}-{b}{t}" for f in ("iptables", "ip6tables")
       for b in ("legacy", "nft") for t in ("", "-save", "-restore")},
}


def test_every_plain_name_leads_to_the_backends_own_tool():
    links = command_links("legacy", DEBIAN.get)
    assert links == {
        "iptables": "/usr/sbin/iptables-legacy",
        "iptables-save": "/usr/sbin/iptables-legacy-save",
        "iptables-restore": "/usr/sbin/iptables-legacy-restore",
        "ip6tables": "/usr/sbin/ip6tables-legacy",
        "ip6tables-save": "/usr/sbin/ip6tables-legacy-save",
        "ip6tables-restore": "/usr/sbin/ip6tables-legacy-restore",
    }
    assert command_links("nft", DEBIAN.get)["iptables-save"] == "/usr/sbin/iptables-nft-save"


def test_tools_not_installed_get_no_link():
    only_v4 = {k: v for k, v in DEBIAN.items() if not k.startswith("ip6")}
    assert sorted(command_links("legacy", only_v4.get)) == ["iptables", "iptables-restore",
                                                            "iptables-save"]


def test_links_are_laid_where_the_shell_finds_the_name_else_beside_the_target():
    links = {"iptables": "/usr/sbin/iptables-legacy", "iptables-save": "/opt/x/iptables-legacy-save"}
    found = {"iptables": "/usr/local/sbin/iptables"}  # iptables-save: not on PATH
    assert layers(links, found.get) == {
        "/usr/local/sbin": {"iptables": "/usr/sbin/iptables-legacy"},
        "/opt/x": {"iptables-save": "/opt/x/iptables-legacy-save"},
    }
