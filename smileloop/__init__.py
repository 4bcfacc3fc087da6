"""smileloop: on-site feedback that closes the loop. This package is the application on the top floor: the
``smileloop`` command (:mod:`smileloop.cli`) and ``smileloop demo``, assembling the parts; nothing imports it.
The ground every part shares is :mod:`smileloop_core` (docs/ARCHITECTURE.md)."""

from smileloop_core import __version__

__all__ = ["__version__"]
