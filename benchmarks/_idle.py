"""Memory of a process, from /proc: importing nothing but the stdlib, so that a Ray task sent
from here (`memory_kb`) finds an idle Ray worker as it is, without torch or poptune in it."""

FIELDS = ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem")


def memory_kb(pid: int | None = None) -> dict[str, int]:
    """VmRSS, VmHWM (peak RSS), RssAnon, RssFile, RssShmem in kB, and Pss (each shared page
    split among the processes that map it) where smaps_rollup can be read ({} if the process
    is gone)."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid or 'self'}/status", encoding="ascii") as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in FIELDS:
                    out[key] = int(line.split()[1])
        with open(f"/proc/{pid or 'self'}/smaps_rollup", encoding="ascii") as f:
            for line in f:
                if line.startswith("Pss:"):
                    out["Pss"] = int(line.split()[1])
    except OSError:
        pass
    return out
