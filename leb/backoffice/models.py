# The back office keeps no tables of its own. This module exists because Django
# sends post_migrate only for apps with a models module, and the roles are put
# in step with every app's permissions on this app's post_migrate (apps.py).
