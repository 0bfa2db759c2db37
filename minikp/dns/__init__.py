"""The cluster DNS: records computed from the plan and endpoints (records.py), served by a
dnsmasq process inside each DNS pod's network namespace (dnsmasq.py)."""
