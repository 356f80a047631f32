"""The shipped plugins (importing this package registers them).  One decorated class per plugin."""

from . import (  # noqa: F401
    context,
    dca,
    entries,
    execution,
    ict,
    mean_reversion,
    momentum,
    opportunity,
    patterns,
    planning,
    risk,
    structure,
    threat,
)
