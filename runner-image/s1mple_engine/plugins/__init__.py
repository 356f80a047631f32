"""The shipped plugins (importing this package registers them).  One decorated class per plugin."""

from . import context, execution, opportunity, planning, threat  # noqa: F401
