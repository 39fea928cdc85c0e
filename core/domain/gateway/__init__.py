"""The gateway's domain: routes, matching, header rules, rate-limit, cache and circuit rules."""
