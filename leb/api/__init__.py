"""Who is calling the HTTP API: personal access tokens, session and guest authentication."""
