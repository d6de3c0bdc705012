"""Pure mappers from wire models to the domain, one module per surface."""
