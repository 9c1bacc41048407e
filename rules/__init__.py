"""The rule folders, shipped as the package ``netdiag_rules``: one ``<CODE>-<name>/`` per rule."""
