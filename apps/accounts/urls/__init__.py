"""The accounts context's URL modules: `auth` (/api/v1/auth/), `users` (/api/v1/users),
`well_known` (/.well-known/)."""
