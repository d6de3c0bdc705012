"""The Connector surface ``/api/fhir/R4/{practice}``: FHIR R4 read, search and Bulk Data export,
behind SMART backend-services authorization."""
