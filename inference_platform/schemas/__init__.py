"""Request-body schemas, one module per endpoint family.

They live in the core because two callers need the very same rules: the API validating a
request, and the control role validating each line of a batch file.
"""
