"""An idle Ray worker's resident size: a task in a module that imports nothing but the stdlib,
so the worker that runs it loads no more than Ray itself does."""


def rss_kb() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0
