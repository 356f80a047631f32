"""The `s1mple` command line (filled in by the engine and meta work)."""


def main() -> None:
    raise SystemExit("s1mple: not built yet")
