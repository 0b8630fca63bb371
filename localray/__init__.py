"""Private local Ray processes for the tests and the benchmarks, stopped exactly by pid.

Development only: not part of the poptune package, never in its wheel. One concept a module:

- :mod:`localray.processes`: finding processes (by pid and start time, by a marker on their
  command line, by descent) and stopping them by pid;
- :mod:`localray.cluster`: local Ray clusters started with `ray start` (a head, worker nodes, a
  head with Ray's fake autoscaler), each in its own temp dir, and stopped by their own pids;
- :mod:`localray.env`: the environment of a process that starts its own private Ray, as a
  laptop user's does, and the teardown of that Ray.

Never `ray stop` (it would kill every Ray on the machine) and never a name pattern: other Rays
on this machine are somebody else's.
"""
