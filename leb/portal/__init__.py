"""The portal shell: layout, home page with the quick check, help, language and time-zone switching."""
