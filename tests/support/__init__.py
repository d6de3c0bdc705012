"""What more than one test package uses, in one place, by topic.

- ``clock``: :class:`~tests.support.clock.FakeTime`, the throttle's clock that sleeping moves;
- ``sandbox``: a live emulated tenant on a loopback port (:class:`LiveTenant`, ``start_live``)
  and the helpers that drive it: portal sign-in and the Connector's SMART backend tokens;
- ``api``: the live API harness, carebridge over a SQLite store reaching an in-process sandbox
  (:class:`Live`, ``running``), and the body of a booking;
- ``factories``: valid domain values and records, and the round-trip and refusal checks;
- ``sync``: the sync's tenant, its runs, the sandbox's control routes, and the ids the ground
  truth and the store name;
- ``webhooks``: a real Standard Webhooks receiver served in the test's loop, and the
  subscription harness over the live API;
- ``postgres``: a fresh PostgreSQL database per test;
- ``processes``: free ports, waiting for a URL, and ``carebridge sandbox serve`` as a child
  process.

Helpers one package alone uses stay in that package. Fixtures more than one package uses are
defined in the root ``tests/conftest.py`` over these modules; no test module imports a fixture,
and none imports from another package's tests or from a conftest (``tests/test_layout.py``).
"""
