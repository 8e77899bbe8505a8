"""``python -m ctutils …``: see :mod:`ctutils.cli`."""

from ctutils.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
