"""The course's benchmarks against the Keras example (run them with ``python benchmarks/run.py``).

Modules: ``config`` (paths, sizes, the course's recipe), ``measure`` (timing and memory primitives),
``inputs`` (synthetic studies), ``sections`` (the timed comparisons), ``probes`` (the memory
measurements that run in child processes), ``report`` (results.json and the Markdown tables),
``reference`` (the Keras example re-implemented) and ``run`` (the command line).
"""
