"""Settings modules: `base` (everything), `local` (make run), `test` (pytest), `production`."""
