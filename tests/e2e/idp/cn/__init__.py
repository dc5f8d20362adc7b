"""Mock servers of the enterprise IdPs of China and of Entra ID / Teams, one module per
provider, all built on `common.MockServer`. They follow `reference/providers.md` and check
what the filter sends; see each module's docstring for its endpoints and users."""
