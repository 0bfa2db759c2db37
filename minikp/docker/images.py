"""minikp's own images (images/ in the checkout), built offline: FROM scratch, with static
binaries (busybox from busybox-static, minikp-serve compiled here with gcc -static) or
programs and their libraries copied from the building machine's Debian packages.

    minikp/serve-hostname   the hostname over HTTP (TCP) and UDP on 9376
    minikp/echo             HTTP on 8080: pod name, client address, request headers
    minikp/netbox           curl, dig, nslookup, ping, tcpdump, iptables (for `minikp exec`)
    minikp/pause            holds a Docker pod's network namespace

Each image's build context is images/NAME/ plus the files context_files() says (assembled
in a temporary directory: a Dockerfile cannot COPY from outside its context).

- ensure(client, names): build the images that are missing or older than their sources
  (tests and `up` use this).
- `python3 -m minikp.docker.images [--force] [NAME...]` (`make images`): build them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

from minikp.errors import OperationError

REPO = "minikp"
IMAGES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "images")
NAMES = ("pause", "serve-hostname", "echo", "netbox")
BUSYBOX = "/usr/bin/busybox"  # Debian's busybox-static
NETBOX_TOOLS = ("curl", "dig", "nslookup", "ping", "tcpdump", "iptables", "iptables-save",
                "iptables-restore", "iptables-legacy", "iptables-legacy-save")
SOURCE_LABEL = "minikp.dev/source"
XTABLES = "/usr/lib/x86_64-linux-gnu/xtables"


def tag(name: str) -> str:
    return f"{REPO}/{name}:latest"


def is_own(image: str) -> bool:
    """minikp/NAME[:latest]: an image minikp builds (never pulled)."""
    ref, _, t = image.partition(":")
    return ref.startswith(REPO + "/") and ref[len(REPO) + 1:] in NAMES and t in ("", "latest")


def own_name(image: str) -> str:
    return image.partition(":")[0][len(REPO) + 1:]


def _compile_server(out: str) -> None:
    src = os.path.join(IMAGES_DIR, "src", "minikp-serve.c")
    r = subprocess.run(["gcc", "-static", "-O2", "-o", out, src], capture_output=True, text=True)
    if r.returncode != 0:
        raise OperationError(f"building minikp-serve (gcc -static, from gcc and libc6-dev): {r.stderr}")


def _libraries(path: str) -> list[str]:
    r = subprocess.run(["ldd", path], capture_output=True, text=True)
    libs = []
    for line in r.stdout.splitlines():
        parts = line.split()
        for p in parts:
            if p.startswith("/"):
                libs.append(p)
    return libs


def _copy_into(root: str, path: str, as_path: str | None = None) -> None:
    dest = root + (as_path or path)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if not os.path.exists(dest):
        shutil.copy2(os.path.realpath(path), dest)


def _netbox_rootfs(root: str) -> None:
    files = []
    for tool in NETBOX_TOOLS:
        path = shutil.which(tool)
        if path is None:
            raise OperationError(f"minikp/netbox needs {tool} on the building machine "
                                 "(scripts/setup.sh installs it)")
        _copy_into(root, path)  # multi-call binaries (xtables-*-multi) go by their argv[0]
        files.append(path)
    if os.path.isdir(XTABLES):
        for f in os.listdir(XTABLES):
            _copy_into(root, os.path.join(XTABLES, f))
            files.append(os.path.join(XTABLES, f))
    for lib in {lib for f in files for lib in _libraries(f)}:
        _copy_into(root, lib)
    os.makedirs(os.path.join(root, "etc"), exist_ok=True)
    with open(os.path.join(root, "etc", "nsswitch.conf"), "w") as f:
        f.write("hosts: files dns\n")
    with open(os.path.join(root, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\ntcpdump:x:104:109::/nonexistent:/bin/false\n")


def context(name: str, into: str) -> str:
    """The build context of image `name`, assembled in directory `into`."""
    src = os.path.join(IMAGES_DIR, name)
    shutil.copytree(src, into, dirs_exist_ok=True)
    if name in ("pause", "serve-hostname", "echo"):
        _compile_server(os.path.join(into, "minikp-serve"))
    if name != "pause":
        if not os.path.exists(BUSYBOX):
            raise OperationError(f"{tag(name)} needs {BUSYBOX} (Debian's busybox-static)")
        shutil.copy2(BUSYBOX, os.path.join(into, "busybox"))
    if name == "netbox":
        _netbox_rootfs(os.path.join(into, "rootfs"))
    return into


def source_hash(name: str) -> str:
    """Of what the image is built from in this checkout: a changed Dockerfile or server
    source makes ensure() build it again."""
    h = hashlib.sha256()
    for d in (name, "src"):
        root = os.path.join(IMAGES_DIR, d)
        for dirpath, dirs, files in sorted(os.walk(root)):
            dirs.sort()
            for f in sorted(files):
                path = os.path.join(dirpath, f)
                h.update(os.path.relpath(path, IMAGES_DIR).encode())
                with open(path, "rb") as fh:
                    h.update(fh.read())
    return h.hexdigest()[:16]


def build(client, name: str) -> None:
    import docker
    with tempfile.TemporaryDirectory(prefix=f"minikp-image-{name}-") as d:
        try:
            client.images.build(path=context(name, d), tag=tag(name), rm=True, forcerm=True,
                                network_mode="none",
                                labels={"minikp.dev/image": name, SOURCE_LABEL: source_hash(name)})
        except docker.errors.BuildError as e:
            log = "".join(str(x.get("stream", x.get("error", ""))) for x in e.build_log)
            raise OperationError(f"building {tag(name)}: {e.msg}\n{log}") from None


def present(client, name: str) -> bool:
    """Built, from this checkout's current sources."""
    import docker
    try:
        image = client.images.get(tag(name))
    except docker.errors.ImageNotFound:
        return False
    return (image.labels or {}).get(SOURCE_LABEL) == source_hash(name)


def ensure(client, names=NAMES, force: bool = False) -> list[str]:
    """Build the named images that are missing (all of them with force). Returns those built."""
    built = []
    for name in names:
        if force or not present(client, name):
            build(client, name)
            built.append(name)
    return built


def main(argv=None) -> int:
    from minikp.docker import engine
    args = list(sys.argv[1:] if argv is None else argv)
    force = "--force" in args
    wanted = [a for a in args if a != "--force"] or list(NAMES)
    unknown = [n for n in wanted if n not in NAMES]
    if unknown:
        print(f"unknown image {', '.join(unknown)}; images: {', '.join(NAMES)}", file=sys.stderr)
        return 2
    user = engine.process_user()  # holds a private engine only while building
    try:
        client = engine.client(engine.acquire(user))
        for name in wanted:
            done = ensure(client, [name], force)
            print(f"{tag(name)}: {'built' if done else 'present'}")
    finally:
        engine.release(user)
    return 0


if __name__ == "__main__":
    sys.exit(main())
