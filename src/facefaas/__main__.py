"""``python -m facefaas``: the same as the ``facefaas`` command."""

from facefaas.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
