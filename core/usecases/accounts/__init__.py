"""Use cases of the accounts context; each returns `Result[..., <Name>Error]`."""
