"""Pure codecs between the domain and the field's formats: FHIR R4, X12 5010, HL7 v2, C-CDA."""
