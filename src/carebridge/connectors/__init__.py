"""Upstream drivers behind the ports: the CareCloud v2, portal and Connector surfaces."""
