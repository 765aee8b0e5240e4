"""The back office's roles (support, finance, admin) as Django groups, kept in step with their permissions."""
