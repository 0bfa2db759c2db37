"""docs/figures/*.png from the stored benchmark results (matplotlib, no display needed).

draw(res, out_dir) -> [(alt text, path relative to docs/)]: bring-up time against pods for
minikp and Mininet (bench/scale.py's pairs) and sync time against services for each proxy
mode (report.sync_modes). Run by bench/run_all.py after measuring, and by
`run_all.py --render-only` from bench/results.json alone.
"""

import os

from report import sync_modes


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")  # files only
    import matplotlib.pyplot as plt
    return plt


def bringup(plt, scale, path):
    sizes = sorted(scale)
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (("minikp_up", "minikp up"), ("mininet_up", "Mininet build + start")):
        med = [scale[n][key]["median"] for n in sizes]
        lo = [scale[n][key]["median"] - scale[n][key]["min"] for n in sizes]
        hi = [scale[n][key]["max"] - scale[n][key]["median"] for n in sizes]
        ax.errorbar(sizes, med, yerr=[lo, hi], marker="o", capsize=3, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("pods (minikp) / hosts (Mininet)")
    ax.set_ylabel("seconds (median, min–max)")
    ax.set_title("Bring-up time against cluster size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def sync(plt, modes, path):
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for i, (ax, title) in enumerate(zip(axes, ("full sync", "one-endpoint change"))):
        for mode, where, got, _ref in modes:
            pts = sorted((n, v[i]) for n, v in got.items() if v[i])
            if pts:
                ax.plot(*zip(*pts), marker="o", linestyle="--" if where == "VM" else "-",
                        label=f"{mode}" + (" (VM)" if where == "VM" and "VM" not in mode else ""))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("services (× 5 endpoints)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("seconds")
    axes[1].legend(fontsize=8)
    fig.suptitle("Proxy sync time against services (dashed: inside the VM tier, qemu TCG)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def draw(res, out_dir):
    plt = _pyplot()
    os.makedirs(out_dir, exist_ok=True)
    made = []
    if res.get("scale"):
        bringup(plt, res["scale"], os.path.join(out_dir, "bringup.png"))
        made.append(("bring-up time against pods, minikp and Mininet", "figures/bringup.png"))
    modes = sync_modes(res)
    if modes:
        sync(plt, modes, os.path.join(out_dir, "sync.png"))
        made.append(("sync time against services for each proxy mode", "figures/sync.png"))
    return made
