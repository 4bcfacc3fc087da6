"""Staff provisioning: sites, locations and devices, each device with its own broker identity.

The library does the work (``inventory``, ``broker``, ``bundle``, ``claims``, ``devices``, ``tls``); ``cli``
is a thin layer of click commands over it (``smileloop provision …`` and ``smileloop enroll``).
"""
