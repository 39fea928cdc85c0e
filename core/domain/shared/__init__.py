"""The shared kernel: small types every bounded context may use."""
