"""The portal surface ``/portal/*``: the JSON calls of CareCloud's web app (Charts and RCM).

No public spec exists; ``src/carecloud_sandbox/README.md`` documents what this emulates.
"""
