"""The emulated CareCloud tenant.

It reproduces the real developer API v2 (shapes and quirks), the portal with MFA and the
Connector's FHIR R4 and Bulk surfaces, keeps a synthetic practice that is deterministic from a seed,
and offers a control plane for faults, drift and ground truth. It is a sibling of the product
package, installed with the ``carebridge[sandbox]`` extra, and imports nothing from ``carebridge``:
emulator and driver are written from the spec independently so they cannot share one bug.
"""
