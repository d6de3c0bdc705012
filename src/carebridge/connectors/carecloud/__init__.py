"""The CareCloud connector: one driver per surface (v2, portal, Connector FHIR) behind a tenant
facade, with sans-IO auth flows, a pure retry policy, an adaptive throttle and drift checks."""
