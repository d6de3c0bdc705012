"""The emulated CareCloud tenant.

It reproduces the real developer API v2 (shapes and quirks), keeps a synthetic practice that is
deterministic from a seed, and offers a control plane for faults, drift and ground truth. It may
use ``carebridge.domain`` and ``carebridge.codecs``, and never the connectors: emulator and driver
are written from the spec independently so they cannot share one bug.
"""
